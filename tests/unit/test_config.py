from pathlib import Path

import pytest

from kodad.config import provider_from_env
from kodad.domain.errors import ConfigError
from kodad.domain.model import ProviderConfig, ProviderKind


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


def test_serving_beyond_loopback_without_a_sandbox_needs_to_be_asked_for() -> None:
    from kodad.config import SandboxConfig

    with pytest.raises(ConfigError, match="--allow-unsandboxed"):
        SandboxConfig().check("0.0.0.0:50051", False, "bwrap is not installed")
    SandboxConfig().check("127.0.0.1:50051", False, "bwrap is not installed")
    SandboxConfig().check("0.0.0.0:50051", True, "")
    SandboxConfig(allow_unsandboxed=True).check("0.0.0.0:50051", False, "bwrap is not installed")


def test_provider_key_flags_name_a_variable_and_maybe_a_host() -> None:
    from kodad.domain.access import ProviderKeys

    assert ProviderKeys.parse(["A_KEY", "B=api.example.com"]) == (
        ("A_KEY", None),
        ("B", "api.example.com"),
    )
    with pytest.raises(ValueError, match="NAME=HOST"):
        ProviderKeys.parse(["not a name"])


def test_the_default_scripted_provider_plays_kodad_script_json() -> None:
    script = '{"rounds": [[{"text": "hi"}]]}'
    provider = provider_from_env({"KODAD_SCRIPT_JSON": script})
    assert provider == ProviderConfig(ProviderKind.SCRIPTED, script_json=script)
    # Another provider kind chosen by the environment does not pick the script up.
    assert provider_from_env({"KODAD_SCRIPT_JSON": script, "OPENAI_API_KEY": "k"}).kind == (
        ProviderKind.OPENAI_COMPATIBLE
    )


def test_a_bad_default_script_fails_at_start_up_naming_its_source() -> None:
    with pytest.raises(ConfigError, match=r"KODAD_SCRIPT_JSON: script is not valid JSON"):
        provider_from_env({"KODAD_SCRIPT_JSON": "{rounds"})
    with pytest.raises(ConfigError, match=r"KODAD_SCRIPT_JSON: script must be an object"):
        provider_from_env({"KODAD_SCRIPT_JSON": "[]"})


def test_the_price_table_reads_toml_and_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    from kodad.domain.model import Usage
    from kodad.engine.budget import Price, PriceTable

    good = tmp_path / "prices.toml"
    good.write_text(
        'currency = "EUR"\n[models."gpt-x"]\ninput = 2.5\noutput = 10\ncache_read = 1.25\n'
    )
    table = PriceTable.load(good)
    assert table.currency == "EUR"
    assert table.models == {"gpt-x": Price(2.5, 10.0, 1.25, 0.0)}
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000, cache_read_tokens=400_000)
    assert table.priced("gpt-x", usage).cost == pytest.approx(0.6 * 2.5 + 1.0 + 0.4 * 1.25)
    assert table.priced("other", usage).cost == 0.0
    for body, why in [
        ("[models.m]\ninput = 1\n", "needs input and output"),
        ("[models.m]\ninput = 1\noutput = -2\n", "takes non-negative"),
        ("[models.m]\ninput = 1\noutput = 2\nextra = 3\n", "takes non-negative"),
        ("not toml = = 1", "--prices"),
    ]:
        bad = tmp_path / "bad.toml"
        bad.write_text(body)
        with pytest.raises(ConfigError, match=why):
            PriceTable.load(bad)
