"""What the torch-based workloads share: imports with clear errors, device, dtype."""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from agent.workloads import WorkloadError

_DTYPE_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def import_library(module: str, package: str, model_ref: str) -> ModuleType:
    """Import a heavy library, or say which package is missing and what to do."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise WorkloadError(
            f"{model_ref} needs the Python package {package}, which cannot be "
            f"imported here ({error}): install it (requirements-workloads.txt) "
            "or run the agent image, which has it."
        ) from None


def check_local_target(target: str) -> None:
    """A path that does not exist says so, instead of a Hub id error."""
    if (
        target.startswith(("/", "./", "../", "~"))
        and not Path(target).expanduser().exists()
    ):
        raise WorkloadError(
            f"the model folder {target!r} does not exist on this machine: give a "
            f"folder that holds the model, or a Hugging Face model id (org/name)"
        )


def prepare_model_load(
    torch: ModuleType, target: str, dtype_param: str, notes: list[str]
) -> tuple[str, Any, str]:
    """Check the model's location, pick the device and dtype: (device, dtype, name)."""
    check_local_target(target)
    device, note = pick_device(torch)
    if note:
        notes.append(note)
    dtype, dtype_name = resolve_dtype(torch, dtype_param, device)
    return device, dtype, dtype_name


def pick_device(torch: ModuleType) -> tuple[str, str | None]:
    """("cuda", None) when CUDA works; else ("cpu", a note saying so)."""
    if torch.cuda.is_available():
        return "cuda", None
    return "cpu", "no CUDA device is available to PyTorch: this ran on the CPU"


def resolve_dtype(torch: ModuleType, name: str, device: str) -> tuple[Any, str]:
    """The torch dtype for fp32/fp16/bf16/auto and the name actually used."""
    if name == "auto":
        if device == "cuda":
            name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            name = "fp32"
    return getattr(torch, _DTYPE_NAMES[name]), name


def synchronize(torch: ModuleType, device: str) -> None:
    """Wait for queued device work, so a timer reads when it really ended."""
    if device == "cuda":
        torch.cuda.synchronize()


def local_revision(path: Path) -> str:
    """For a model folder not from the Hub: a hash of its config and file sizes.

    Hashing multi-gigabyte weights would cost minutes, so sizes stand in for them.
    """
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path).as_posix()
        digest.update(f"{relative}\0{file.stat().st_size}\n".encode())
        if file.suffix in (".json", ".txt", ".model"):
            digest.update(file.read_bytes())
    return f"local-sha256:{digest.hexdigest()[:16]}"


def model_revision(target: str) -> str | None:
    """The Hub commit of a model loaded from the Hub cache, else a content hash.

    The commit is the name of the cache snapshot folder holding config.json;
    looking it up reads the local cache only, never the network.
    """
    folder = Path(target).expanduser()
    if folder.is_dir():
        return local_revision(folder)
    hub = importlib.import_module("huggingface_hub")
    cached = hub.try_to_load_from_cache(target, "config.json")
    if isinstance(cached, str) and Path(cached).parent.parent.name == "snapshots":
        return Path(cached).parent.name
    return None
