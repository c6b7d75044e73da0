"""agent.spec: what the dashboard calls before launching a pod."""

from __future__ import annotations

import subprocess
import sys
from typing import get_args

import pytest

from agent import schema
from agent.spec import (
    MODEL_REF_FORMS,
    SpecError,
    WorkloadSpec,
    check_samples,
    parse_workload,
)
from tests.agent.support import REPO


def test_mock_defaults() -> None:
    spec = parse_workload("mock-v0", {})
    assert spec == WorkloadSpec(
        kind="mock",
        model_ref="mock-v0",
        parameters={"batch_size": 1, "seed": 0, "warmup": 2},
    )


def test_gemm_reads_dtype_and_size_from_the_ref() -> None:
    spec = parse_workload("gemm:bf16:8192", {"warmup": 0})
    assert spec.kind == "gemm"
    assert (spec.gemm_dtype, spec.gemm_size) == ("bf16", 8192)
    assert spec.parameters == {"seed": 0, "warmup": 0}


@pytest.mark.parametrize(
    ("ref", "kind", "target"),
    [
        ("hf:meta-llama/Llama-3.1-8B", "hf_causal_lm", "meta-llama/Llama-3.1-8B"),
        ("hf:/models/tiny-llama", "hf_causal_lm", "/models/tiny-llama"),
        ("embed:BAAI/bge-small-en-v1.5", "embedding", "BAAI/bge-small-en-v1.5"),
    ],
)
def test_model_refs_with_targets(ref: str, kind: str, target: str) -> None:
    spec = parse_workload(ref, {"batch_size": 8, "dtype": "bf16"})
    assert spec.kind == kind and spec.target == target
    assert spec.parameters["batch_size"] == 8 and spec.parameters["dtype"] == "bf16"


def test_hf_defaults_and_round_trip() -> None:
    spec = parse_workload("hf:org/model", {"new_tokens": 16})
    assert spec.parameters == {
        "batch_size": 1,
        "prompt_tokens": 128,
        "new_tokens": 16,
        "dtype": "auto",
        "seed": 0,
        "warmup": 2,
    }
    assert parse_workload(spec.model_ref, spec.parameters) == spec


def test_unknown_model_ref_lists_the_accepted_forms() -> None:
    with pytest.raises(SpecError) as caught:
        parse_workload("llama", {})
    message = str(caught.value)
    assert "'llama'" in message
    for form in MODEL_REF_FORMS:
        assert form in message
    assert caught.value.parameter is None


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        ("gemm:int8:1024", "gemm:<fp32|fp16|bf16>:<size>"),
        ("gemm:fp16:big", "size 'big'"),
        # Full-width digits would be a second spelling of the same workload.
        ("gemm:fp32:\uff12\uff15\uff16", "the size must be a whole number"),
        ("gemm:fp16:8", "from 16 to 32768"),
        ("gemm:fp16:65536", "from 16 to 32768"),
        ("hf:", "names no model"),
        ("embed:model name with spaces", "not a model id or path"),
        ("hf:../../etc", "'..'"),
    ],
)
def test_bad_model_refs_say_why(ref: str, fragment: str) -> None:
    with pytest.raises(SpecError, match=None) as caught:
        parse_workload(ref, {})
    assert fragment in str(caught.value)
    assert caught.value.parameter is None


@pytest.mark.parametrize(
    ("ref", "params", "parameter", "fragment"),
    [
        ("mock-v0", {"batch_size": 0}, "batch_size", "from 1 to 1024"),
        ("mock-v0", {"batch_size": 2000}, "batch_size", "out of range"),
        ("mock-v0", {"batch_size": "4"}, "batch_size", "not a whole number"),
        ("mock-v0", {"batch_size": True}, "batch_size", "not a whole number"),
        ("mock-v0", {"batch_size": 4.0}, "batch_size", "not a whole number"),
        ("mock-v0", {"new_tokens": 4}, "new_tokens", "accepted parameters are"),
        ("hf:x/y", {"prompt_tokens": 40000}, "prompt_tokens", "from 1 to 32768"),
        ("hf:x/y", {"new_tokens": 0}, "new_tokens", "from 1 to 8192"),
        ("hf:x/y", {"dtype": "int4"}, "dtype", "fp32, fp16, bf16, auto"),
        ("hf:x/y", {"seed": -1}, "seed", "from 0 to 4294967295"),
        ("hf:x/y", {"warmup": 1001}, "warmup", "from 0 to 1000"),
        ("hf:x/y", {"temperature": 0.7}, "temperature", "does not apply"),
        ("gemm:fp32:64", {"dtype": "fp16"}, "dtype", "part of the model_ref"),
        ("embed:x/y", {"new_tokens": 8}, "new_tokens", "does not apply"),
    ],
)
def test_bad_parameters_name_themselves(
    ref: str, params: dict[str, object], parameter: str, fragment: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_workload(ref, params)
    assert caught.value.parameter == parameter
    assert parameter in str(caught.value)
    assert fragment in str(caught.value)


def test_spec_error_is_a_value_error() -> None:
    assert issubclass(SpecError, ValueError)


def test_samples_rule() -> None:
    assert check_samples(1) == 1 and check_samples(100_000) == 100_000
    for bad in (0, 100_001, "8", 2.0, True):
        with pytest.raises(SpecError) as caught:
            check_samples(bad)
        assert caught.value.parameter == "samples"


def test_kinds_match_the_result_schema() -> None:
    from agent import spec

    assert get_args(spec.WorkloadKind) == get_args(schema.WorkloadKind)


def test_importing_spec_stays_light() -> None:
    code = (
        "import sys, agent.spec; "
        "heavy = {'torch', 'transformers', 'pynvml', 'numpy', 'pydantic'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert answer.stdout.strip() == "[]"


def test_agent_start_up_imports_no_workload_library() -> None:
    code = (
        "import sys, agent.__main__, agent.app, agent.workloads.mock; "
        "heavy = {'torch', 'transformers', 'sentence_transformers', 'numpy'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert answer.stdout.strip() == "[]"
