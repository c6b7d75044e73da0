"""The agent's settings, read once from the environment (see docs/agent.md).

A bad value never stops the agent: it becomes one sentence in `errors` (naming
the variable, the value and the fix) and the setting falls back to its default,
so the agent can still serve a failed `result.json` and still stop its own pod.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from agent.spec import SpecError, WorkloadSpec, check_samples, parse_workload

DEFAULT_WORKSPACE = "/workspace"
DEFAULT_HOST = "0.0.0.0"  # noqa: S104 - pods are reached through RunPod's proxy
DEFAULT_PORT = 8000
DEFAULT_SAMPLE_HZ = 1.0
DEFAULT_DEADLINE_S = 3600.0
DEFAULT_RUNPOD_API_BASE_URL = "https://api.runpod.io"
SAMPLE_HZ_MIN, SAMPLE_HZ_MAX = 0.5, 10.0
DEADLINE_S_MIN, DEADLINE_S_MAX = 1.0, 7 * 24 * 3600.0
MOCK_SPEED_MIN, MOCK_SPEED_MAX = 0.01, 1000.0
RUN_ID_MAX_CHARS = 200


@dataclass
class AgentConfig:
    model_ref: str | None = None
    samples: int = 0
    run_id: str | None = None
    sample_hz: float = DEFAULT_SAMPLE_HZ
    workspace: Path = Path(DEFAULT_WORKSPACE)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    deadline_s: float = DEFAULT_DEADLINE_S
    params: dict[str, object] = field(default_factory=dict)
    simulate_gpu: bool = False
    mock_speed: float = 1.0
    runpod_pod_id: str | None = None
    runpod_api_key: str | None = field(default=None, repr=False)
    runpod_api_base_url: str = DEFAULT_RUNPOD_API_BASE_URL
    runpod_dc_id: str | None = None
    spec: WorkloadSpec | None = None
    # One sentence per bad value; the run does not start when this is not empty.
    errors: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        # The token and the RunPod key must never reach a log line.
        return (
            f"AgentConfig(model_ref={self.model_ref!r}, samples={self.samples}, "
            f"run_id={self.run_id!r}, workspace={str(self.workspace)!r}, "
            f"host={self.host!r}, port={self.port}, sample_hz={self.sample_hz}, "
            f"deadline_s={self.deadline_s}, errors={len(self.errors)})"
        )


def load_config(environ: Mapping[str, str]) -> AgentConfig:
    """Read every setting; collect a sentence for each bad one instead of raising."""
    config = AgentConfig()
    errors = config.errors

    def get(name: str) -> str | None:
        value = environ.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    config.workspace = _workspace(get("PERSEPHONE_WORKSPACE"), errors)
    config.host = _host(get("PERSEPHONE_AGENT_HOST"), errors)
    config.port = _port(get("PERSEPHONE_AGENT_PORT"), errors)
    config.token = _token(environ.get("PERSEPHONE_AGENT_TOKEN"), errors)
    config.deadline_s = _number(
        "PERSEPHONE_DEADLINE_S",
        get("PERSEPHONE_DEADLINE_S"),
        DEFAULT_DEADLINE_S,
        (DEADLINE_S_MIN, DEADLINE_S_MAX),
        "a number of seconds",
        errors,
    )
    config.sample_hz = _number(
        "PERSEPHONE_SAMPLE_HZ",
        get("PERSEPHONE_SAMPLE_HZ"),
        DEFAULT_SAMPLE_HZ,
        (SAMPLE_HZ_MIN, SAMPLE_HZ_MAX),
        "a rate in Hz",
        errors,
    )
    config.mock_speed = _number(
        "PERSEPHONE_MOCK_SPEED",
        get("PERSEPHONE_MOCK_SPEED"),
        1.0,
        (MOCK_SPEED_MIN, MOCK_SPEED_MAX),
        "a speed factor",
        errors,
    )
    config.simulate_gpu = _flag(
        "PERSEPHONE_SIMULATE_GPU", get("PERSEPHONE_SIMULATE_GPU"), errors
    )
    config.run_id = _run_id(get("PERSEPHONE_RUN_ID"), errors)
    config.runpod_pod_id = get("RUNPOD_POD_ID")
    config.runpod_api_key = get("RUNPOD_API_KEY")
    config.runpod_dc_id = get("RUNPOD_DC_ID")
    config.runpod_api_base_url = _base_url(get("RUNPOD_API_BASE_URL"), errors)

    config.samples = _samples(get("SAMPLES"), errors)
    config.params = _params(get("PERSEPHONE_PARAMS"), errors)
    config.model_ref = get("MODEL_REF")
    if config.model_ref is None:
        errors.append(
            "MODEL_REF is not set: set it to mock-v0, gemm:<fp32|fp16|bf16>:<size>, "
            "hf:<model id or local path> or embed:<model id or local path>."
        )
    else:
        config.spec = _spec(config.model_ref, config.params, errors)
    return config


def _workspace(value: str | None, errors: list[str]) -> Path:
    if value is None:
        return Path(DEFAULT_WORKSPACE)
    if "\x00" in value:
        errors.append(
            f"PERSEPHONE_WORKSPACE={value!r} is not a usable path: set it to a "
            "folder path such as /workspace."
        )
        return Path(DEFAULT_WORKSPACE)
    return Path(value).expanduser()


def _host(value: str | None, errors: list[str]) -> str:
    if value is None:
        return DEFAULT_HOST
    if any(ch.isspace() for ch in value) or "/" in value:
        errors.append(
            f"PERSEPHONE_AGENT_HOST={value!r} is not an address: set it to an IP "
            f"address such as {DEFAULT_HOST} or 127.0.0.1."
        )
        return DEFAULT_HOST
    return value


def _port(value: str | None, errors: list[str]) -> int:
    if value is None:
        return DEFAULT_PORT
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 65535:
        errors.append(
            f"PERSEPHONE_AGENT_PORT={value!r} is not a port: set it to a whole "
            f"number from 1 to 65535 (default {DEFAULT_PORT})."
        )
        return DEFAULT_PORT
    return int(value)


def _token(value: str | None, errors: list[str]) -> str | None:
    if value is None or value.strip() == "":
        errors.append(
            "PERSEPHONE_AGENT_TOKEN is not set: set it to the run's access token "
            "(every request but /health must carry it)."
        )
        return None
    if value != value.strip() or any(ord(ch) < 33 or ord(ch) > 126 for ch in value):
        # The value itself is a secret, so the sentence names only its length.
        errors.append(
            f"PERSEPHONE_AGENT_TOKEN (a value of {len(value)} characters) has spaces "
            "or characters outside printable ASCII: set it to a token of printable "
            "ASCII characters without spaces."
        )
        return None
    return value


def _number(
    name: str,
    value: str | None,
    default: float,
    limits: tuple[float, float],
    what: str,
    errors: list[str],
) -> float:
    if value is None:
        return default
    low, high = limits
    fix = f"set {name} to {what} from {low:g} to {high:g} (default {default:g})."
    try:
        number = float(value)
    except ValueError:
        errors.append(f"{name}={value!r} is not a number: {fix}")
        return default
    if not math.isfinite(number) or not low <= number <= high:
        errors.append(f"{name}={value!r} is out of range: {fix}")
        return default
    return number


def _flag(name: str, value: str | None, errors: list[str]) -> bool:
    if value is None or value == "0":
        return False
    if value == "1":
        return True
    errors.append(f"{name}={value!r} is not a flag: set {name} to 1 or 0.")
    return False


def _run_id(value: str | None, errors: list[str]) -> str | None:
    if value is None:
        return None
    if len(value) > RUN_ID_MAX_CHARS or not value.isprintable():
        errors.append(
            f"PERSEPHONE_RUN_ID={value!r} is not a run id: set it to printable text "
            f"of at most {RUN_ID_MAX_CHARS} characters."
        )
        return None
    return value


def _base_url(value: str | None, errors: list[str]) -> str:
    if value is None:
        return DEFAULT_RUNPOD_API_BASE_URL
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        errors.append(
            f"RUNPOD_API_BASE_URL={value!r} is not an http(s) URL: set it to "
            f"{DEFAULT_RUNPOD_API_BASE_URL} or leave it unset."
        )
        return DEFAULT_RUNPOD_API_BASE_URL
    return value.rstrip("/")


def _samples(value: str | None, errors: list[str]) -> int:
    fix = "set SAMPLES to a whole number from 1 to 100000."
    if value is None:
        errors.append(f"SAMPLES is not set: {fix}")
        return 0
    if not (value.isascii() and value.isdigit()):
        errors.append(f"SAMPLES={value!r} is not a whole number: {fix}")
        return 0
    try:
        return check_samples(int(value))
    except SpecError:
        errors.append(f"SAMPLES={value!r} is out of range: {fix}")
        return 0


def _params(value: str | None, errors: list[str]) -> dict[str, object]:
    if value is None:
        return {}
    fix = 'set PERSEPHONE_PARAMS to a JSON object such as {"batch_size": 4}.'
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        errors.append(
            f"PERSEPHONE_PARAMS={value!r} is not valid JSON ({error.msg} at "
            f"character {error.pos}): {fix}"
        )
        return {}
    if not isinstance(parsed, dict):
        errors.append(f"PERSEPHONE_PARAMS={value!r} is not a JSON object: {fix}")
        return {}
    return parsed


def _spec(
    model_ref: str, params: Mapping[str, object], errors: list[str]
) -> WorkloadSpec | None:
    try:
        return parse_workload(model_ref, params)
    except SpecError as error:
        variable = "PERSEPHONE_PARAMS" if error.parameter else "MODEL_REF"
        errors.append(f"{variable} is invalid: {error}")
        return None
