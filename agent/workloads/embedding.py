"""`embed:<model id or path>`: a sentence-transformers model encoding fixed texts.

A sample is one `encode` call over `batch_size` texts of about `prompt_tokens`
tokens each, built from the model's vocabulary with the seed.
"""

from __future__ import annotations

import random
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


class EmbeddingWorkload:
    kind: WorkloadKind = "embedding"

    def __init__(self, spec: WorkloadSpec) -> None:
        self._spec = spec
        self._batch_size = spec.int_param("batch_size")
        self.info = WorkloadInfo(items_per_sample=self._batch_size)
        self._torch: ModuleType | None = None
        self._device = "cpu"
        self._model: Any = None
        self._texts: list[str] = []

    def load(self) -> None:
        spec = self._spec
        target = spec.target or ""
        torch = import_library("torch", "torch", spec.model_ref)
        st = import_library(
            "sentence_transformers", "sentence-transformers", spec.model_ref
        )
        self._torch = torch
        self._device, dtype, dtype_name = prepare_model_load(
            torch, target, spec.str_param("dtype"), self.info.notes
        )
        try:
            model = st.SentenceTransformer(target, device=self._device)
        except (OSError, ValueError) as error:
            raise WorkloadError(
                f"cannot load the embedding model {target!r}: {error}"
            ) from None
        model.to(dtype)
        model.eval()
        self._model = model
        self.info.device = self._device
        self.info.notes.append(f"weights in {dtype_name}")
        self.info.model_revision = model_revision(target)
        self._texts = self._build_texts(model.tokenizer)
        lengths = [len(ids) for ids in model.tokenizer(self._texts)["input_ids"]]
        limit = getattr(model, "max_seq_length", None)
        self.info.notes.append(
            f"inputs of {sum(lengths) / len(lengths):.0f} tokens on average"
            + (f", cut at the model's {limit}" if limit else "")
        )
        synchronize(torch, self._device)

    def _build_texts(self, tokenizer: Any) -> list[str]:
        special = set(tokenizer.all_special_ids or [])
        allowed = [i for i in range(len(tokenizer)) if i not in special]
        if not allowed:
            raise WorkloadError("the tokenizer has no ordinary tokens to build inputs")
        rng = random.Random(self._spec.int_param("seed"))
        count = self._spec.int_param("prompt_tokens")
        return [
            tokenizer.decode([rng.choice(allowed) for _ in range(count)])
            for _ in range(self._batch_size)
        ]

    def run_sample(self) -> SampleTiming:
        torch = self._torch
        assert torch is not None and self._model is not None
        synchronize(torch, self._device)
        started = time.perf_counter()
        with torch.inference_mode():
            self._model.encode(
                self._texts,
                batch_size=self._batch_size,
                show_progress_bar=False,
            )
        synchronize(torch, self._device)
        return SampleTiming(latency_s=time.perf_counter() - started)
