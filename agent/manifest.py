"""The environment manifest: what a reader needs to reproduce or trust a run."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from importlib import metadata

import agent

ManifestValue = str | int | float | bool | None

# Distribution name -> manifest key. Versions come from package metadata, so
# nothing heavy is imported just to be named here.
_PACKAGES = {
    "torch": "torch_version",
    "transformers": "transformers_version",
    "sentence-transformers": "sentence_transformers_version",
    "numpy": "numpy_version",
    "pydantic": "pydantic_version",
    "nvidia-ml-py": "nvidia_ml_py_version",
}


def package_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def software_manifest(environ: Mapping[str, str]) -> dict[str, ManifestValue]:
    """Agent, Python and library versions, and where RunPod put this pod."""
    facts: dict[str, ManifestValue] = {
        "agent_version": agent.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    for distribution, key in _PACKAGES.items():
        facts[key] = package_version(distribution)
    torch = sys.modules.get("torch")
    # Only a workload that already imported torch can say which CUDA it was built for.
    version = getattr(torch, "version", None) if torch is not None else None
    facts["torch_cuda_version"] = getattr(version, "cuda", None)
    facts["cuda_visible_devices"] = environ.get("CUDA_VISIBLE_DEVICES")
    facts["runpod_pod_id"] = environ.get("RUNPOD_POD_ID")
    facts["runpod_dc_id"] = environ.get("RUNPOD_DC_ID")
    return facts
