# The Persephone agent image: one benchmark per GPU pod (docs/agent.md).
# Build from the repository root: docker build -f docker/agent.Dockerfile .
FROM nvidia/cuda:12.2.2-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PERSEPHONE_WORKSPACE=/workspace

# Ubuntu's archive drops superseded package versions, so apt pins would break
# rebuilds; the CUDA base image tag is what fixes the system layer.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates \
        python3.11 \
        python3.11-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3.11 -m venv /opt/venv

WORKDIR /opt/persephone

# PyPI's Linux x86_64 torch wheel is the CUDA build (its CUDA libraries come as
# nvidia-* wheels), so the pin in requirements-workloads.txt gives a GPU torch
# here; the check below stops the build if a CPU-only wheel slipped in.
COPY agent/requirements.txt agent-requirements.txt
COPY requirements-workloads.txt workloads-requirements.txt
RUN pip install --no-cache-dir \
        -r agent-requirements.txt \
        -r workloads-requirements.txt \
    && python -c "import torch; assert torch.version.cuda, 'torch is CPU-only'"

COPY agent ./agent

# The agent serves /health, /status and its files here (PERSEPHONE_AGENT_PORT).
EXPOSE 8000
CMD ["python", "-m", "agent"]
