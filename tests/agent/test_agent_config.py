"""Settings from the environment: each bad value is one sentence with its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config

GOOD = {
    "MODEL_REF": "mock-v0",
    "SAMPLES": "8",
    "PERSEPHONE_AGENT_TOKEN": "secret-token-value",
}


def test_defaults() -> None:
    config = load_config(GOOD)

    assert config.errors == []
    assert config.spec is not None and config.spec.kind == "mock"
    assert config.samples == 8
    assert config.host == "0.0.0.0" and config.port == 8000  # noqa: S104
    assert config.workspace == Path("/workspace")
    assert config.sample_hz == 1.0 and config.deadline_s == 3600.0
    assert config.simulate_gpu is False and config.mock_speed == 1.0
    assert config.runpod_api_base_url == "https://api.runpod.io"


def test_every_setting_is_read() -> None:
    config = load_config(
        {
            **GOOD,
            "PERSEPHONE_RUN_ID": "run-42",
            "PERSEPHONE_SAMPLE_HZ": "0.5",
            "PERSEPHONE_WORKSPACE": "/tmp/ws",
            "PERSEPHONE_AGENT_HOST": "127.0.0.1",
            "PERSEPHONE_AGENT_PORT": "9000",
            "PERSEPHONE_DEADLINE_S": "120",
            "PERSEPHONE_PARAMS": '{"batch_size": 4}',
            "PERSEPHONE_SIMULATE_GPU": "1",
            "PERSEPHONE_MOCK_SPEED": "2.5",
            "RUNPOD_POD_ID": "pod-1",
            "RUNPOD_API_KEY": "rp-key",
            "RUNPOD_API_BASE_URL": "http://127.0.0.1:9/",
            "RUNPOD_DC_ID": "EU-RO-1",
        }
    )

    assert config.errors == []
    assert (config.run_id, config.sample_hz, config.port) == ("run-42", 0.5, 9000)
    assert config.workspace == Path("/tmp/ws") and config.host == "127.0.0.1"
    assert config.deadline_s == 120.0 and config.mock_speed == 2.5
    assert config.simulate_gpu is True
    assert config.spec is not None and config.spec.parameters["batch_size"] == 4
    assert config.runpod_api_base_url == "http://127.0.0.1:9"
    assert (config.runpod_pod_id, config.runpod_dc_id) == ("pod-1", "EU-RO-1")


@pytest.mark.parametrize(
    ("variable", "value", "fix"),
    [
        ("SAMPLES", "abc", "set SAMPLES to a whole number from 1 to 100000"),
        ("SAMPLES", "0", "set SAMPLES to a whole number from 1 to 100000"),
        ("SAMPLES", "100001", "set SAMPLES to a whole number from 1 to 100000"),
        ("PERSEPHONE_SAMPLE_HZ", "20", "from 0.5 to 10"),
        ("PERSEPHONE_SAMPLE_HZ", "fast", "from 0.5 to 10"),
        ("PERSEPHONE_SAMPLE_HZ", "nan", "from 0.5 to 10"),
        ("PERSEPHONE_AGENT_PORT", "70000", "from 1 to 65535"),
        ("PERSEPHONE_AGENT_PORT", "http", "from 1 to 65535"),
        ("PERSEPHONE_AGENT_HOST", "bad host", "IP address"),
        ("PERSEPHONE_DEADLINE_S", "-5", "PERSEPHONE_DEADLINE_S to a number of seconds"),
        ("PERSEPHONE_MOCK_SPEED", "0", "speed factor"),
        ("PERSEPHONE_SIMULATE_GPU", "yes", "set PERSEPHONE_SIMULATE_GPU to 1 or 0"),
        ("PERSEPHONE_PARAMS", "{batch_size: 4}", "JSON object"),
        ("PERSEPHONE_PARAMS", "[1, 2]", "JSON object"),
        ("RUNPOD_API_BASE_URL", "ftp://example", "http(s) URL"),
        ("MODEL_REF", "llama-7b", "mock-v0, gemm:<fp32|fp16|bf16>:<size>"),
    ],
)
def test_bad_value_is_named_with_its_fix(variable: str, value: str, fix: str) -> None:
    config = load_config({**GOOD, variable: value})

    assert len(config.errors) == 1
    (sentence,) = config.errors
    assert sentence.startswith(variable)
    assert repr(value) in sentence
    assert fix in sentence
    assert sentence.endswith(".")


def test_bad_parameter_names_the_variable_and_parameter() -> None:
    config = load_config({**GOOD, "PERSEPHONE_PARAMS": '{"batch_size": 0}'})

    (sentence,) = config.errors
    assert sentence.startswith("PERSEPHONE_PARAMS is invalid:")
    assert "batch_size=0" in sentence and "from 1 to 1024" in sentence


@pytest.mark.parametrize("variable", ["MODEL_REF", "SAMPLES", "PERSEPHONE_AGENT_TOKEN"])
def test_required_variables(variable: str) -> None:
    environ = {k: v for k, v in GOOD.items() if k != variable}

    config = load_config(environ)

    (sentence,) = config.errors
    assert sentence.startswith(f"{variable} is not set")


def test_serving_settings_fall_back_to_defaults_when_bad() -> None:
    config = load_config(
        {**GOOD, "PERSEPHONE_AGENT_PORT": "0", "PERSEPHONE_DEADLINE_S": "x"}
    )

    assert config.port == 8000 and config.deadline_s == 3600.0
    assert len(config.errors) == 2


def test_secrets_stay_out_of_repr_and_messages() -> None:
    config = load_config(
        {**GOOD, "RUNPOD_API_KEY": "rp-secret-key", "PERSEPHONE_AGENT_TOKEN": "a b"}
    )

    assert "secret-token-value" not in repr(load_config(GOOD))
    assert "rp-secret-key" not in repr(config)
    (sentence,) = config.errors
    assert sentence.startswith("PERSEPHONE_AGENT_TOKEN")
    assert "'a b'" not in sentence
