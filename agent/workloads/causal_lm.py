"""`hf:<model id or path>`: a causal language model, greedy, with per-token times.

Every sample generates exactly `new_tokens` tokens per sequence (min = max) from
a fixed prompt of `prompt_tokens` token ids drawn from the vocabulary with the
seed, so the work per sample never varies. A streamer stamps each decoding step
as its tokens reach the host, which waits for the device.
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

from agent.spec import WorkloadKind, WorkloadSpec
from agent.workloads import SampleTiming, WorkloadError, WorkloadInfo
from agent.workloads._torch import (
    import_library,
    model_revision,
    prepare_model_load,
    synchronize,
)


class _StepClock:
    """A generate() streamer that keeps the time of each decoding step."""

    def __init__(self) -> None:
        self.step_times: list[float] = []
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        now = time.perf_counter()
        # generate() first hands over the prompt itself, then one step at a time.
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.step_times.append(now)

    def end(self) -> None:
        """Nothing to flush: only times are kept."""


def _transformers_dtype_keyword(transformers: ModuleType) -> str:
    # transformers 4.56 renamed `torch_dtype` to `dtype` in from_pretrained.
    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


class CausalLmWorkload:
    kind: WorkloadKind = "hf_causal_lm"

    def __init__(self, spec: WorkloadSpec) -> None:
        self._spec = spec
        self._batch_size = spec.int_param("batch_size")
        self._prompt_tokens = spec.int_param("prompt_tokens")
        self._new_tokens = spec.int_param("new_tokens")
        self.info = WorkloadInfo(items_per_sample=self._batch_size)
        self._torch: ModuleType | None = None
        self._device = "cpu"
        self._model: Any = None
        self._inputs: dict[str, Any] = {}
        self._pad_token_id: int | None = None

    def load(self) -> None:
        spec = self._spec
        target = spec.target or ""
        torch = import_library("torch", "torch", spec.model_ref)
        transformers = import_library("transformers", "transformers", spec.model_ref)
        self._torch = torch
        self._device, dtype, dtype_name = prepare_model_load(
            torch, target, spec.str_param("dtype"), self.info.notes
        )
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(target)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                target, **{_transformers_dtype_keyword(transformers): dtype}
            )
        except (OSError, ValueError) as error:
            raise WorkloadError(
                f"cannot load the causal language model {target!r}: {error}"
            ) from None
        # TODO: load straight onto the GPU (device_map) so models larger than the
        # pod's RAM fit; that needs accelerate in the agent image.
        model.to(self._device)
        model.eval()
        self._model = model
        self.info.device = self._device
        self.info.model_revision = model_revision(target)
        self.info.notes.append(f"weights in {dtype_name}")
        self._check_length(model.config)
        self._inputs = self._prompt(torch, tokenizer, model.config)
        pad = tokenizer.pad_token_id
        self._pad_token_id = pad if pad is not None else tokenizer.eos_token_id
        synchronize(torch, self._device)

    def _check_length(self, config: Any) -> None:
        limit = getattr(config, "max_position_embeddings", None)
        needed = self._prompt_tokens + self._new_tokens
        if isinstance(limit, int) and needed > limit:
            raise WorkloadError(
                f"prompt_tokens + new_tokens = {needed} is more than this model's "
                f"{limit} positions: lower prompt_tokens or new_tokens."
            )

    def _prompt(self, torch: ModuleType, tokenizer: Any, config: Any) -> dict[str, Any]:
        """`prompt_tokens` ids per row, drawn from the vocabulary by the seed."""
        vocab_size = int(getattr(config, "vocab_size", 0) or len(tokenizer))
        special = set(tokenizer.all_special_ids or [])
        allowed = [i for i in range(vocab_size) if i not in special]
        if not allowed:
            raise WorkloadError(
                "the tokenizer has no ordinary tokens to build a prompt"
            )
        generator = torch.Generator(device="cpu").manual_seed(
            self._spec.int_param("seed")
        )
        picks = torch.randint(
            len(allowed),
            (self._batch_size, self._prompt_tokens),
            generator=generator,
        )
        input_ids = torch.tensor(allowed)[picks].to(self._device)
        return {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
        }

    def run_sample(self) -> SampleTiming:
        torch = self._torch
        assert torch is not None and self._model is not None
        clock = _StepClock()
        synchronize(torch, self._device)
        started = time.perf_counter()
        with torch.inference_mode():
            output = self._model.generate(
                **self._inputs,
                max_new_tokens=self._new_tokens,
                min_new_tokens=self._new_tokens,
                do_sample=False,
                num_beams=1,
                streamer=clock,
                pad_token_id=self._pad_token_id,
            )
        synchronize(torch, self._device)
        latency_s = time.perf_counter() - started
        new_per_row = int(output.shape[-1]) - self._prompt_tokens
        return SampleTiming(
            latency_s=latency_s,
            token_times_s=[t - started for t in clock.step_times],
            output_tokens=new_per_row * self._batch_size,
        )
