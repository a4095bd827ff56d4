"""The models a provider offers, cached per provider."""

from __future__ import annotations

import time

from kodad.domain.access import Caller
from kodad.domain.errors import FailedPrecondition, Unavailable
from kodad.domain.model import ModelInfo, ProviderConfig
from kodad.engine import validation
from kodad.engine.live import Core
from kodad.providers import ProviderError

MODELS_TTL_S = 60.0


def _key(provider: ProviderConfig) -> tuple[str, ...]:
    """What a provider's model list depends on: the server and the key it is asked with."""
    return (provider.kind.value, provider.base_url, provider.api_key_env)


class Models:
    def __init__(self, core: Core) -> None:
        self._core = core
        # Model lists by provider (script and all), with when they were fetched.
        self._lists: dict[tuple[str, ...], tuple[float, list[ModelInfo]]] = {}

    async def of_provider(
        self, provider: ProviderConfig | None, session_id: str, *, caller: Caller
    ) -> list[ModelInfo]:
        """The models of `provider` (else the session's, else the server's default), from a
        cache of MODELS_TTL_S seconds per provider."""
        core = self._core
        if provider is None:
            if session_id:
                provider = (await core.live.record(session_id, caller)).provider
            else:
                provider = core.settings.default_provider
        config = validation.provider(provider)
        core.keys.check(config)
        key = _key(config)
        cached = self._lists.get(key)
        if cached is not None and time.monotonic() - cached[0] < MODELS_TTL_S:
            return cached[1]
        try:
            models = await core.providers.get(config).list_models()
        except ProviderError as e:
            if e.code == "auth":
                raise FailedPrecondition(f"the provider refused the key: {e.message}") from None
            raise Unavailable(f"the provider could not list its models: {e.message}") from None
        if len(self._lists) > 256:
            self._lists.clear()
        self._lists[key] = (time.monotonic(), models)
        return models

    def known_window(self, provider: ProviderConfig) -> int:
        """The model's context window, when a model list seen lately states it."""
        cached = self._lists.get(_key(provider))
        if cached is None:
            return 0
        return next((m.context_window_tokens for m in cached[1] if m.id == provider.model), 0)
