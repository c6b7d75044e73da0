"""The fake's GPU catalog: real RunPod ids, plausible prices, made-up stock.

Prices are USD per GPU-hour and illustrative only. The table keeps RunPod's
quirks that a client must survive: an id with a double space (sent back byte
for byte), the "unknown" sentinel, a serverless-only pool, types offered in only
one cloud, and one type with no stock at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

StockLevel = Literal["NONE", "LOW", "MEDIUM", "HIGH"]


@dataclass(frozen=True)
class FakeGpu:
    id: str
    name: str
    memory_gb: int
    secure: float | None
    community: float | None
    availability: StockLevel
    pool: str | None = None
    serverless: float | None = None


FAKE_GPUS: tuple[FakeGpu, ...] = (
    FakeGpu("NVIDIA RTX A4000", "RTX A4000", 16, 0.25, 0.17, "HIGH", "AMPERE_16"),
    # The double space is in RunPod's own id list; the API wants it verbatim.
    FakeGpu("NVIDIA  RTX A4500", "RTX A4500", 20, 0.34, 0.19, "MEDIUM"),
    FakeGpu("NVIDIA L4", "L4", 24, 0.43, None, "HIGH", "ADA_24"),
    FakeGpu("NVIDIA RTX A5000", "RTX A5000", 24, 0.27, 0.16, "MEDIUM", "AMPERE_24"),
    FakeGpu("NVIDIA GeForce RTX 3090", "RTX 3090", 24, 0.43, 0.22, "HIGH"),
    FakeGpu("NVIDIA GeForce RTX 4090", "RTX 4090", 24, 0.69, 0.34, "HIGH", "ADA_24"),
    FakeGpu("NVIDIA A40", "A40", 48, 0.40, None, "LOW", "AMPERE_48"),
    FakeGpu("NVIDIA RTX A6000", "RTX A6000", 48, 0.49, 0.33, "MEDIUM", "AMPERE_48"),
    FakeGpu("NVIDIA L40S", "L40S", 48, 0.86, 0.79, "MEDIUM", "ADA_48_PRO"),
    FakeGpu("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, 1.64, 1.19, "MEDIUM"),
    FakeGpu("NVIDIA A100-SXM4-80GB", "A100 SXM", 80, 1.74, 1.39, "LOW", "AMPERE_80"),
    FakeGpu("NVIDIA H100 80GB HBM3", "H100 SXM", 80, 2.69, None, "MEDIUM"),
    FakeGpu("NVIDIA H200", "H200 SXM", 141, 3.59, None, "LOW", "HOPPER_141"),
    # Listed, priced, and never in stock: every create is refused for capacity.
    FakeGpu("NVIDIA B200", "B200", 180, 5.99, None, "NONE"),
    # Not a pod type: only a serverless price.
    FakeGpu(
        "AMPERE_16", "Serverless 16 GB pool", 16, None, None, "NONE", None, 0.00016
    ),
    # RunPod lists this sentinel; clients skip it.
    FakeGpu("unknown", "unknown", 0, None, None, "NONE"),
)

BY_ID = {gpu.id: gpu for gpu in FAKE_GPUS}


class PricePayload(BaseModel):
    secure: float | None
    community: float | None
    serverless: float | None


class MaxCountPayload(BaseModel):
    secure: int
    community: int


class DataCenterPayload(BaseModel):
    id: str
    name: str
    availability: StockLevel


class GpuTypePayload(BaseModel):
    """A `GpuType` of `GET /v2/catalog/gpus` (RunPod's v2 field names)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    name: str
    pool: str | None
    manufacturer: str
    memory: int
    secure: bool
    community: bool
    price: PricePayload
    max_count: MaxCountPayload = Field(alias="maxCount")
    availability: StockLevel | None = None
    data_centers: list[DataCenterPayload] | None = Field(
        default=None, alias="dataCenters"
    )
    cuda_versions: list[str] | None = Field(default=None, alias="cudaVersions")


def price_for(gpu: FakeGpu, cloud: str) -> float | None:
    return gpu.secure if cloud == "SECURE" else gpu.community


def catalog_payload(*, with_availability: bool) -> list[GpuTypePayload]:
    gpus = []
    for gpu in FAKE_GPUS:
        payload = GpuTypePayload(
            id=gpu.id,
            name=gpu.name,
            pool=gpu.pool,
            manufacturer="AMD" if gpu.id.startswith("AMD") else "Nvidia",
            memory=gpu.memory_gb,
            secure=gpu.secure is not None,
            community=gpu.community is not None,
            price=PricePayload(
                secure=gpu.secure, community=gpu.community, serverless=gpu.serverless
            ),
            max_count=MaxCountPayload(
                secure=8 if gpu.secure is not None else 0,
                community=4 if gpu.community is not None else 0,
            ),
        )
        if with_availability:
            payload.availability = gpu.availability
            payload.data_centers = [
                DataCenterPayload(
                    id="US-TX-3", name="Texas 3", availability=gpu.availability
                ),
                DataCenterPayload(
                    id="EU-RO-1", name="Romania 1", availability=gpu.availability
                ),
            ]
            payload.cuda_versions = ["12.4", "12.6", "12.8"]
        gpus.append(payload)
    return gpus
