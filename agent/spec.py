"""What a workload is: `MODEL_REF` plus parameters, checked without running anything.

The dashboard calls `parse_workload` before it launches a pod, so this module is
pure and cheap: standard library only, no file system, no network, no torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

# The same values as agent.schema.WorkloadKind, kept here to avoid importing pydantic.
WorkloadKind = Literal["mock", "gemm", "hf_causal_lm", "embedding"]
ParameterValue = int | str

MODEL_REF_FORMS: Final = (
    "mock-v0",
    "gemm:<fp32|fp16|bf16>:<size>",
    "hf:<model id or local path>",
    "embed:<model id or local path>",
)
GEMM_DTYPES: Final = ("fp32", "fp16", "bf16")
MODEL_DTYPES: Final = ("fp32", "fp16", "bf16", "auto")
GEMM_SIZE_MIN: Final = 16
GEMM_SIZE_MAX: Final = 32768
SAMPLES_MIN: Final = 1
SAMPLES_MAX: Final = 100_000
SEED_MAX: Final = 2**32 - 1

# (lowest, highest) for each whole-number parameter.
_INT_RANGES: Final[dict[str, tuple[int, int]]] = {
    "batch_size": (1, 1024),
    "prompt_tokens": (1, 32768),
    "new_tokens": (1, 8192),
    "seed": (0, SEED_MAX),
    "warmup": (0, 1000),
}

# The parameters each kind accepts, with their defaults.
_DEFAULTS: Final[dict[str, dict[str, ParameterValue]]] = {
    "mock": {"batch_size": 1, "seed": 0, "warmup": 2},
    "gemm": {"seed": 0, "warmup": 5},
    "hf_causal_lm": {
        "batch_size": 1,
        "prompt_tokens": 128,
        "new_tokens": 64,
        "dtype": "auto",
        "seed": 0,
        "warmup": 2,
    },
    "embedding": {
        "batch_size": 1,
        "prompt_tokens": 64,
        "dtype": "auto",
        "seed": 0,
        "warmup": 3,
    },
}

# A model id or path: printable, no whitespace, nothing a shell or URL would bend.
_TARGET_RE: Final = re.compile(r"[A-Za-z0-9._/~+=@:-]+")


class SpecError(ValueError):
    """A workload that cannot run as asked; `parameter` is None for `model_ref`."""

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class WorkloadSpec:
    """A checked workload. `parameters` holds every accepted one, defaults filled in.

    `parse_workload(spec.model_ref, spec.parameters)` gives the same spec back.
    """

    kind: WorkloadKind
    model_ref: str
    parameters: dict[str, ParameterValue] = field(default_factory=dict)
    # hf and embed: the model id or local path after the prefix.
    target: str | None = None
    # gemm: the dtype and matrix size written in the model_ref.
    gemm_dtype: str | None = None
    gemm_size: int | None = None

    def int_param(self, name: str) -> int:
        value = self.parameters[name]
        if not isinstance(value, int):
            raise TypeError(f"parameter {name} is not a whole number")
        return value

    def str_param(self, name: str) -> str:
        return str(self.parameters[name])


def parse_workload(model_ref: str, params: Mapping[str, object]) -> WorkloadSpec:
    """Check `model_ref` and `params`; raise SpecError naming what is wrong."""
    if not isinstance(model_ref, str):
        raise SpecError(f"model_ref must be text, not {type(model_ref).__name__}.")
    kind, target, gemm_dtype, gemm_size = _parse_model_ref(model_ref.strip())
    parameters = _parse_params(kind, params)
    return WorkloadSpec(
        kind=kind,
        model_ref=model_ref.strip(),
        parameters=parameters,
        target=target,
        gemm_dtype=gemm_dtype,
        gemm_size=gemm_size,
    )


def check_samples(value: object) -> int:
    """The `SAMPLES` rule: a whole number from 1 to 100000."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(
            f"samples={value!r} is not a whole number: use a whole number "
            f"from {SAMPLES_MIN} to {SAMPLES_MAX}.",
            "samples",
        )
    if not SAMPLES_MIN <= value <= SAMPLES_MAX:
        raise SpecError(
            f"samples={value!r} is out of range: use a whole number "
            f"from {SAMPLES_MIN} to {SAMPLES_MAX}.",
            "samples",
        )
    return value


def _unknown_ref(model_ref: str) -> SpecError:
    forms = ", ".join(MODEL_REF_FORMS)
    return SpecError(f"Unknown model_ref {model_ref!r}: use one of {forms}.")


def _parse_model_ref(
    model_ref: str,
) -> tuple[WorkloadKind, str | None, str | None, int | None]:
    if model_ref == "mock-v0":
        return "mock", None, None, None
    prefix, sep, rest = model_ref.partition(":")
    if not sep:
        raise _unknown_ref(model_ref)
    if prefix == "gemm":
        dtype, size = _parse_gemm(model_ref, rest)
        return "gemm", None, dtype, size
    if prefix in ("hf", "embed"):
        kind: WorkloadKind = "hf_causal_lm" if prefix == "hf" else "embedding"
        if not rest:
            raise SpecError(
                f"model_ref {model_ref!r} names no model: write {prefix}:<model id "
                f"or local path>, e.g. {prefix}:org/model-name."
            )
        if not _TARGET_RE.fullmatch(rest) or ".." in rest.split("/"):
            raise SpecError(
                f"model_ref {model_ref!r} is not a model id or path: use letters, "
                "digits and ._/-~+=@: only, without '..' segments."
            )
        return kind, rest, None, None
    raise _unknown_ref(model_ref)


def _parse_gemm(model_ref: str, rest: str) -> tuple[str, int]:
    dtype, sep, size_text = rest.partition(":")
    if not sep or dtype not in GEMM_DTYPES:
        raise SpecError(
            f"model_ref {model_ref!r} is not a gemm workload: write "
            f"gemm:<{'|'.join(GEMM_DTYPES)}>:<size>, e.g. gemm:bf16:8192."
        )
    if not (size_text.isascii() and size_text.isdigit()):
        raise SpecError(
            f"model_ref {model_ref!r} has size {size_text!r}: the size must be a "
            f"whole number from {GEMM_SIZE_MIN} to {GEMM_SIZE_MAX}."
        )
    size = int(size_text)
    if not GEMM_SIZE_MIN <= size <= GEMM_SIZE_MAX:
        raise SpecError(
            f"model_ref {model_ref!r} has size {size}: the size must be a whole "
            f"number from {GEMM_SIZE_MIN} to {GEMM_SIZE_MAX}."
        )
    return dtype, size


def _parse_params(
    kind: WorkloadKind, params: Mapping[str, object]
) -> dict[str, ParameterValue]:
    if not isinstance(params, Mapping):
        raise SpecError(
            f"parameters must be a mapping of names to values, not "
            f"{type(params).__name__}.",
            "parameters",
        )
    defaults = _DEFAULTS[kind]
    accepted = ", ".join(defaults)
    result: dict[str, ParameterValue] = dict(defaults)
    for name, value in params.items():
        if name not in defaults:
            if name == "dtype" and kind == "gemm":
                raise SpecError(
                    "Parameter 'dtype' does not apply to gemm workloads: the dtype "
                    "is part of the model_ref (gemm:<fp32|fp16|bf16>:<size>).",
                    str(name),
                )
            raise SpecError(
                f"Parameter {name!r} does not apply to {kind} workloads: "
                f"the accepted parameters are {accepted}.",
                str(name),
            )
        result[name] = _check_value(name, value)
    return result


def _check_value(name: str, value: object) -> ParameterValue:
    if name == "dtype":
        if value not in MODEL_DTYPES:
            raise SpecError(
                f"dtype={value!r} is not supported: use one of "
                f"{', '.join(MODEL_DTYPES)}.",
                name,
            )
        return str(value)
    low, high = _INT_RANGES[name]
    # bool is an int in Python, but `true` is never a count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(
            f"{name}={value!r} is not a whole number: use a whole number "
            f"from {low} to {high}.",
            name,
        )
    if not low <= value <= high:
        raise SpecError(
            f"{name}={value!r} is out of range: use a whole number "
            f"from {low} to {high}.",
            name,
        )
    return value
