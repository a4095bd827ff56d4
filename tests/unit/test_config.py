import pytest

from kodad.config import ConfigError, provider_from_env
from kodad.engine.model import ProviderConfig, ProviderKind


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ProviderConfig()),
        (
            {"OPENAI_API_KEY": "k"},
            ProviderConfig(ProviderKind.OPENAI_COMPATIBLE, "gpt-4o-mini", "", "OPENAI_API_KEY"),
        ),
        (
            {"ANTHROPIC_API_KEY": "k", "KODAD_MODEL": "claude-x"},
            ProviderConfig(ProviderKind.ANTHROPIC, "claude-x", "", "ANTHROPIC_API_KEY"),
        ),
        (
            {"KODAD_BASE_URL": "http://127.0.0.1:11434/v1", "KODAD_MODEL": "qwen"},
            ProviderConfig(ProviderKind.OPENAI_COMPATIBLE, "qwen", "http://127.0.0.1:11434/v1", ""),
        ),
        ({"KODAD_PROVIDER": "scripted", "OPENAI_API_KEY": "k"}, ProviderConfig()),
        (
            {"KODAD_PROVIDER": "Anthropic"},
            ProviderConfig(ProviderKind.ANTHROPIC, "claude-sonnet-4-5", "", ""),
        ),
    ],
)
def test_provider_defaults_from_env(env: dict[str, str], expected: ProviderConfig) -> None:
    assert provider_from_env(env) == expected


def test_unknown_provider_kind_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="KODAD_PROVIDER='gemini' is not one of"):
        provider_from_env({"KODAD_PROVIDER": "gemini"})
