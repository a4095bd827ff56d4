"""LLM providers behind one protocol, chosen per session by its ProviderConfig."""

from __future__ import annotations

from kodad.domain.model import ProviderConfig, ProviderKind
from kodad.providers.anthropic import AnthropicProvider
from kodad.providers.base import (
    LlmProvider,
    ProviderError,
    ProviderEvent,
    ProviderNotice,
    ProviderRequest,
    RateLimitReport,
    Retry,
    StreamFinished,
    TextChunk,
    ThinkingChunk,
    ThinkingSignature,
    ToolCallReady,
    ToolSpec,
    UsageReport,
)
from kodad.providers.http import DEFAULT_RETRY, RetryPolicy
from kodad.providers.openai_compat import OpenAICompatProvider
from kodad.providers.scripted import ScriptedProvider, ScriptError, parse_script
from kodad.providers.transport import HttpClient

SERVED_KINDS = (ProviderKind.SCRIPTED, ProviderKind.OPENAI_COMPATIBLE, ProviderKind.ANTHROPIC)


class ProviderRegistry:
    """Builds providers from configs; HTTP providers share one pooled HTTP client."""

    def __init__(
        self,
        *,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 300.0,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        # read_timeout_s bounds the silence between two bytes of a stream: a stalled stream
        # fails the turn instead of hanging it.
        self._client = HttpClient(
            connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s
        )
        self._retry = retry
        self._cache: dict[ProviderConfig, LlmProvider] = {}

    def get(self, config: ProviderConfig) -> LlmProvider:
        provider = self._cache.get(config)
        if provider is None:
            provider = self._build(config)
            if len(self._cache) > 1024:
                self._cache.clear()
            self._cache[config] = provider
        return provider

    def _build(self, config: ProviderConfig) -> LlmProvider:
        if config.kind is ProviderKind.SCRIPTED:
            return ScriptedProvider(config.script_json)
        if config.kind is ProviderKind.OPENAI_COMPATIBLE:
            return OpenAICompatProvider(
                base_url=config.base_url,
                api_key_env=config.api_key_env,
                client=self._client,
                retry=self._retry,
                max_tokens_field=config.max_tokens_field,
            )
        if config.kind is ProviderKind.ANTHROPIC:
            return AnthropicProvider(
                base_url=config.base_url,
                api_key_env=config.api_key_env,
                client=self._client,
                retry=self._retry,
                prompt_caching=not config.disable_prompt_caching,
            )
        raise ProviderError("unsupported", f"provider kind {config.kind.name} is not served")

    async def aclose(self) -> None:
        await self._client.aclose()


__all__ = [
    "SERVED_KINDS",
    "AnthropicProvider",
    "HttpClient",
    "LlmProvider",
    "OpenAICompatProvider",
    "ProviderError",
    "ProviderEvent",
    "ProviderNotice",
    "ProviderRegistry",
    "ProviderRequest",
    "RateLimitReport",
    "Retry",
    "RetryPolicy",
    "ScriptError",
    "ScriptedProvider",
    "StreamFinished",
    "TextChunk",
    "ThinkingChunk",
    "ThinkingSignature",
    "ToolCallReady",
    "ToolSpec",
    "UsageReport",
    "parse_script",
]
