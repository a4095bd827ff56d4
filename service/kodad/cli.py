"""The `kodad` command."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import sys
from pathlib import Path

from kodad import __version__, logs
from kodad.client.connection import default_address
from kodad.config_flags import from_flags
from kodad.domain.errors import ConfigError

_HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kodad", description="A coding-agent engine over gRPC.")
    parser.add_argument("--version", action="version", version=f"kodad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gRPC service")
    serve.add_argument(
        "--listen", help="host:port to listen on (env KODAD_LISTEN; default 127.0.0.1:50051)"
    )
    serve.add_argument(
        "--data-dir", type=Path, help="where the database lives (env KODAD_DATA_DIR)"
    )
    serve.add_argument(
        "--store",
        help="postgres://user@host:port/db to share one PostgreSQL database between replicas "
        "(env KODAD_STORE; default: the SQLite file in the data dir)",
    )
    serve.add_argument("--replica-id", help="this replica's name in lease rows (default host:pid)")
    serve.add_argument(
        "--lease-ttl", type=float,
        help="seconds a replica's turn lease lasts unrenewed before another replica takes the "
        "turn over (PostgreSQL store; default 15)",
    )  # fmt: skip
    serve.add_argument("--loop-cap", type=int, help="default loop cap for sessions (default 50)")
    serve.add_argument(
        "--snapshot-dir", type=Path, metavar="DIR",
        help="where workspace checkpoints are kept (env KODAD_SNAPSHOT_DIR; default DATA_DIR/"
        "snapshots); replicas must share one, as they share the workspaces",
    )  # fmt: skip
    serve.add_argument(
        "--snapshot-file-limit", type=int, default=16 * 1024 * 1024, metavar="BYTES",
        help="larger files are left out of checkpoints, and reported (default 16 MiB)",
    )  # fmt: skip
    serve.add_argument(
        "--snapshot-capture-limit", type=int, default=256 * 1024 * 1024, metavar="BYTES",
        help="new bytes one checkpoint may store; the files past it are reported (default "
        "256 MiB)",
    )  # fmt: skip
    serve.add_argument(
        "--prices", type=Path, metavar="FILE",
        help="models' prices per million tokens (TOML: currency, [models.NAME] input, "
        "output, cache_read, cache_write), for usage costs and cost budgets (env KODAD_PRICES)",
    )  # fmt: skip
    serve.add_argument(
        "--script-json", type=Path, metavar="FILE",
        help="the script the default scripted provider plays (format of "
        "ProviderConfig.script_json; env KODAD_SCRIPT_JSON holds the text itself)",
    )  # fmt: skip
    serve.add_argument(
        "--provider-read-timeout",
        type=float,
        help="seconds of silence after which a provider stream fails (default 300)",
    )
    serve.add_argument(
        "--event-loop",
        choices=("uvloop", "asyncio"),
        default="uvloop" if _HAS_UVLOOP else "asyncio",
        help="the asyncio event loop (uvloop where installed: lower tail latency)",
    )
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    serve.add_argument(
        "--log-format", choices=("text", "json"), default="text",
        help="log lines as text or one JSON object each (with session_id and turn_id)",
    )  # fmt: skip
    secure = serve.add_argument_group("security")
    secure.add_argument(
        "--tokens-file", type=Path,
        help="bearer tokens (TOML: sha256 -> tenant, role); reloaded on SIGHUP "
        "(env KODAD_TOKENS_FILE; `kodad token new` makes entries)",
    )  # fmt: skip
    secure.add_argument("--tls-cert", type=Path, help="serve TLS with this certificate (PEM)")
    secure.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    secure.add_argument(
        "--client-ca", type=Path,
        help="require client certificates signed by this CA (mutual TLS; tenant = CN)",
    )  # fmt: skip
    secure.add_argument(
        "--insecure-no-auth", action="store_true",
        help="allow serving beyond loopback without authentication (dangerous)",
    )  # fmt: skip
    secure.add_argument(
        "--workspace-root", type=Path, action="append", default=None,
        help="sessions may only use directories under this one (repeatable; env "
        "KODAD_WORKSPACE_ROOTS, separated by ':')",
    )  # fmt: skip
    secure.add_argument(
        "--provider-key-env", action="append", default=None, metavar="NAME[=HOST]",
        help="an environment variable sessions may name as their API key, sent only to HOST "
        "(any host without one); repeatable. Default: OPENAI_API_KEY=api.openai.com, "
        "ANTHROPIC_API_KEY=api.anthropic.com and the default provider's key",
    )  # fmt: skip
    jail = serve.add_argument_group("sandbox (where sessions' commands run)")
    jail.add_argument(
        "--sandbox-read", type=Path, action="append", default=None,
        help="show this host directory read-only inside the sandbox, e.g. a toolchain "
        "(repeatable; env KODAD_SANDBOX_READ, separated by ':')",
    )  # fmt: skip
    jail.add_argument(
        "--trust-workspace", type=Path, action="append", default=None,
        help="the MCP servers this workspace's profiles declare start without asking "
        "(repeatable; covers directories under it)",
    )  # fmt: skip
    jail.add_argument(
        "--allow-full-access", action="store_true",
        help="admin callers may give sessions the FULL_ACCESS sandbox policy (unconfined)",
    )  # fmt: skip
    jail.add_argument(
        "--allow-unsandboxed", action="store_true",
        help="serve beyond loopback although this host has no sandbox (dangerous)",
    )  # fmt: skip
    limits = serve.add_argument_group("limits (0 disables one)")
    for name, default, text in _LIMIT_FLAGS:
        limits.add_argument(
            f"--{name}", type=int, default=default, help=f"{text} (default {default})"
        )
    limits.add_argument(
        "--idle-timeout", type=float, default=3600.0,
        help="seconds after which an idle connection is closed (default 3600)",
    )  # fmt: skip
    serve.add_argument(
        "--otel", action="store_true",
        help="export OpenTelemetry spans (turn, provider call, tool call) over OTLP/HTTP "
        "(OTEL_EXPORTER_OTLP_ENDPOINT; needs the otel extra)",
    )  # fmt: skip
    serve.add_argument(
        "--metrics-listen", default="",
        help="serve Prometheus metrics on host:port at /metrics (off by default)",
    )  # fmt: skip

    sidecar = serve.add_argument_group("sidecar (an editor or tool launches kodad and owns it)")
    sidecar.add_argument(
        "--ready-json", action="store_true",
        help="print one JSON line on stdout once serving (address, port, pid, version, token)",
    )  # fmt: skip
    launch = sidecar.add_mutually_exclusive_group()
    launch.add_argument(
        "--launch-token", action="store_true",
        help="require a random per-launch bearer token on every call (printed by --ready-json)",
    )  # fmt: skip
    launch.add_argument(
        "--launch-token-fd", type=int, metavar="FD",
        help="like --launch-token, with the token read from this file descriptor",
    )  # fmt: skip
    sidecar.add_argument(
        "--exit-with-parent", action="store_true",
        help="stop (cancelling and storing running turns) when stdin closes or the parent dies",
    )  # fmt: skip
    serve.add_argument("--log-file", type=Path, help="log to this file instead of stderr")
    serve.add_argument(
        "--profiles-dir", type=Path,
        help="agent profiles (*.json, *.toml) every session may use (env KODAD_PROFILES_DIR; "
        "default $XDG_CONFIG_HOME/kodad/agents)",
    )  # fmt: skip
    serve.add_argument(
        "--allow-private-fetch", action="store_true",
        help="let web_fetch reach loopback, private and link-local addresses (off by default)",
    )  # fmt: skip

    token = commands.add_parser("token", help="make a bearer token and its tokens-file entry")
    token.add_argument("action", choices=("new",))
    token.add_argument("--tenant", required=True, help="the tenant the token acts as")
    token.add_argument("--admin", action="store_true", help="the token sees every tenant")

    chat = commands.add_parser("chat", help="talk to a session in this terminal")
    _client_flags(chat)
    which = chat.add_mutually_exclusive_group()
    which.add_argument("--session", help="resume this session (its history is shown)")
    which.add_argument("--new", action="store_true", help="start a new session (the default)")
    chat.add_argument("--workspace", help="workspace of a new session (default .)")
    chat.add_argument(
        "--mode", choices=("auto", "confirm", "read-only"),
        help="approval mode of a new session (default confirm)",
    )  # fmt: skip

    acp = commands.add_parser(
        "acp", help="an Agent Client Protocol agent on stdin/stdout, for editors",
        description="Speaks ACP on stdin/stdout. Drives the service at --connect (env "
        "KODAD_CONNECT), or by default a private kodad it starts itself and stops on exit.",
    )  # fmt: skip
    acp.add_argument(
        "--connect", default=os.environ.get("KODAD_CONNECT"),
        help="host:port of a running service (env KODAD_CONNECT; default: a private sidecar)",
    )  # fmt: skip
    acp.add_argument(
        "--token", default=os.environ.get("KODAD_TOKEN"), help="bearer token (env KODAD_TOKEN)"
    )
    acp.add_argument(
        "--data-dir", type=Path,
        help="the private sidecar's data dir (env KODAD_DATA_DIR; default the user's)",
    )  # fmt: skip

    sessions = commands.add_parser("sessions", help="list, show, delete or export sessions")
    _client_flags(sessions)
    sessions.add_argument("action", choices=("list", "show", "delete", "export"))
    sessions.add_argument("session_id", nargs="?", help="the session (not for list)")
    sessions.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


# Limit flags: name, default, help. Each maps to kodad.domain.access.Limits or ServerConfig.
_LIMIT_FLAGS = (
    ("max-sessions-per-tenant", 10_000, "sessions one tenant may keep"),
    ("max-turns", 256, "turns running at once"),
    ("max-turns-per-tenant", 64, "turns one tenant may run at once"),
    ("max-input-bytes", 1024 * 1024, "size of a turn's text"),
    ("max-watchers-per-session", 64, "WatchSession streams open on one session"),
    ("max-message-bytes", 64 * 1024 * 1024, "size of one gRPC message"),
    ("tool-output-limit", 256 * 1024, "characters of a tool's output the model sees"),
)


def _client_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--connect", default=default_address(),
        help="host:port of the service (env KODAD_CONNECT, else KODAD_LISTEN; default "
        "127.0.0.1:50051)",
    )  # fmt: skip
    parser.add_argument(
        "--token", default=os.environ.get("KODAD_TOKEN"), help="bearer token (env KODAD_TOKEN)"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "chat":
        from kodad.chat.app import chat

        return asyncio.run(chat(args.connect, args.token, args.session, args.workspace, args.mode))
    if args.command == "sessions":
        from kodad.chat.sessions import sessions

        return asyncio.run(
            sessions(args.connect, args.token, args.action, args.session_id, args.json)
        )
    if args.command == "acp":
        from kodad.acp.main import main as acp_main

        extra = ["--data-dir", str(args.data_dir)] if args.data_dir else []
        return acp_main(args.connect, args.token, extra)
    if args.command == "token":
        return _token(args.tenant, args.admin)
    logs.configure(args.log_level, args.log_format, args.log_file)
    try:
        config = from_flags(args)
        if args.otel:
            from kodad.metrics import export_spans

            try:
                export_spans()
            except RuntimeError as e:
                raise ConfigError(str(e)) from e
        from kodad.server import serve

        if args.event_loop == "uvloop":
            import uvloop

            uvloop.run(serve(config))
        else:
            asyncio.run(serve(config))
    except ConfigError as e:
        logging.getLogger("kodad").error("%s", e)
        return 2
    except OSError as e:
        logging.getLogger("kodad").error("%s", e)
        return 1
    return 0


def _token(tenant: str, admin: bool) -> int:
    from kodad.api.auth import hash_token, new_token

    token = new_token()
    print(f"token: {token}")
    print("# Give the token to the client (it is shown once); add this to the tokens file:")
    print(f'[[tokens]]\nsha256 = "{hash_token(token)}"\ntenant = "{tenant}"')
    if admin:
        print('role = "admin"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
