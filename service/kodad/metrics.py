"""Prometheus metrics of the process, served by `kodad serve --metrics-listen`."""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry()
# Spans of turns, provider calls and tool calls; no-ops unless tracing is configured
# (`kodad serve --otel`, or an application that installs an OpenTelemetry SDK).
TRACER = trace.get_tracer("kodad")

RPCS = Counter(
    "kodad_rpcs", "Finished RPCs by method and gRPC status code.", ["method", "code"],
    registry=REGISTRY,
)  # fmt: skip
EVENTS = Counter("kodad_events", "Events stored and published.", registry=REGISTRY)
EVENTS_COALESCED = Counter(
    "kodad_events_coalesced",
    "Deltas merged into a queued event of the same block instead of stored as their own.",
    registry=REGISTRY,
)
PROVIDER_SECONDS = Histogram(
    "kodad_provider_round_seconds", "Duration of one provider call (a model round), by kind.",
    ["kind"], registry=REGISTRY, buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)  # fmt: skip
PROVIDER_ERRORS = Counter(
    "kodad_provider_errors", "Failed provider calls by kind and error code.", ["kind", "code"],
    registry=REGISTRY,
)  # fmt: skip
TOOL_SECONDS = Histogram(
    "kodad_tool_seconds", "Duration of tool calls, by tool.", ["tool"], registry=REGISTRY,
    buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600),
)  # fmt: skip


class LiveState(Protocol):
    """What the gauges read from a session manager."""

    def live_sessions(self) -> int: ...

    def running_turns(self, tenant: str | None = None) -> int: ...

    def approvals_waiting(self) -> int: ...


class _Gauges(Collector):
    """Gauges read at scrape time from every tracked manager."""

    def __init__(self) -> None:
        self.managers: weakref.WeakSet[LiveState] = weakref.WeakSet()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        managers = list(self.managers)
        yield GaugeMetricFamily(
            "kodad_live_sessions", "Sessions loaded in memory (recently used).",
            value=sum(m.live_sessions() for m in managers),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "kodad_turns_running", "Turns running now.",
            value=sum(m.running_turns() for m in managers),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "kodad_approvals_waiting", "Approval and loop-cap questions waiting for an answer.",
            value=sum(m.approvals_waiting() for m in managers),
        )  # fmt: skip


_GAUGES = _Gauges()
REGISTRY.register(_GAUGES)


def track(manager: LiveState) -> None:
    """Includes a manager's live state in the gauges (for as long as it exists)."""
    _GAUGES.managers.add(manager)


@contextmanager
def timed(histogram: Histogram, label: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(label).observe(time.perf_counter() - started)


def serve(address: str) -> int:
    """Serves /metrics on host:port (port 0: a free one) in a thread; returns the port."""
    host, _, port = address.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host or "127.0.0.1", registry=REGISTRY)
    return int(server.server_address[1])


def export_spans() -> None:
    """Installs the OpenTelemetry SDK with an OTLP/HTTP exporter (configured by the standard
    OTEL_EXPORTER_OTLP_* and OTEL_SERVICE_NAME variables). Needs `pip install kodad[otel]`."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as e:
        raise RuntimeError(f"--otel needs the otel extra (pip install 'kodad[otel]'): {e}") from e
    provider = TracerProvider(resource=Resource.create({"service.name": "kodad"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
