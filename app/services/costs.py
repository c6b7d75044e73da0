"""What a unit of work cost, from the price frozen into the run at launch.

Two views, as the comparison page shows them side by side:
- steady state: price × measured window ÷ samples, the cost of the work itself;
- all-in: price × billed seconds (pod created → termination confirmed) ÷ samples,
  which adds image pull, model load, warm-up and teardown.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.models import Run


@dataclass(frozen=True)
class RunCost:
    price_per_hour: float | None
    billed_s: float | None
    total_usd: float | None
    steady_per_1k_samples_usd: float | None
    all_in_per_1k_samples_usd: float | None
    steady_per_1m_tokens_usd: float | None
    all_in_per_1m_tokens_usd: float | None

    def as_json(self) -> dict[str, float | None]:
        """The figures in USD, as the API and exports name them."""
        return {
            "billed_s": self.billed_s,
            "total": self.total_usd,
            "steady_per_1k_samples": self.steady_per_1k_samples_usd,
            "all_in_per_1k_samples": self.all_in_per_1k_samples_usd,
            "steady_per_1m_tokens": self.steady_per_1m_tokens_usd,
            "all_in_per_1m_tokens": self.all_in_per_1m_tokens_usd,
        }


def billed_seconds(run: Run) -> float | None:
    if run.pod_created_at is None or run.pod_terminated_at is None:
        return None
    return max(0.0, (run.pod_terminated_at - run.pod_created_at).total_seconds())


def _per_unit(
    price_per_hour: float | None, seconds: float | None, units: float | None, scale: int
) -> float | None:
    if not price_per_hour or seconds is None or not units:
        return None
    return price_per_hour / 3600.0 * seconds / units * scale


def run_cost(run: Run) -> RunCost:
    price = run.price_per_hour
    billed_s = billed_seconds(run)
    samples = run.samples_done or None
    tokens = run.output_tokens or None
    return RunCost(
        price_per_hour=price,
        billed_s=billed_s,
        total_usd=price / 3600.0 * billed_s if price and billed_s is not None else None,
        steady_per_1k_samples_usd=_per_unit(price, run.measure_s, samples, 1_000),
        all_in_per_1k_samples_usd=_per_unit(price, billed_s, samples, 1_000),
        steady_per_1m_tokens_usd=_per_unit(price, run.measure_s, tokens, 1_000_000),
        all_in_per_1m_tokens_usd=_per_unit(price, billed_s, tokens, 1_000_000),
    )
