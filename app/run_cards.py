"""The run page's metric cards, built from a run and its result.json.

Pure: a run and its result go in, labelled and formatted values come out, so
the page stays short and the wording is tested without Streamlit.
"""

from __future__ import annotations

from typing import NamedTuple

from agent.schema import Result
from app import ui as fmt
from app.models import Run
from app.services.costs import run_cost

# Under this many samples the agent marks the 99th percentile indicative.
P99_MIN_N = 100


class Card(NamedTuple):
    label: str
    value: str
    help: str | None = None
    # A short qualifier shown under the value, e.g. "indicative".
    note: str | None = None


def card_rows(run: Run, result: Result | None) -> list[list[Card]]:
    """Rows of cards, in reading order; empty when nothing was measured."""
    if run.latency_n is None and result is None:
        return []
    rows = [latency_cards(run, result), work_cards(run, result), cost_cards(run)]
    if result is not None:
        rows += [token_cards(result), energy_cards(result), start_cards(result)]
    return [row for row in rows if row]


def latency_cards(run: Run, result: Result | None) -> list[Card]:
    n = run.latency_n
    reported = bool(result and result.latency_ms and result.latency_ms.p99_indicative)
    indicative = reported or (n is not None and n < P99_MIN_N)
    counted = f"Over n = {n} measured samples." if n is not None else None
    return [
        Card("Latency p50", fmt.quantity(run.latency_p50_ms, "ms"), counted),
        Card("Latency p95", fmt.quantity(run.latency_p95_ms, "ms"), counted),
        Card(
            "Latency p99",
            fmt.quantity(run.latency_p99_ms, "ms"),
            f"{counted} Under {P99_MIN_N} samples the p99 is close to the maximum."
            if indicative
            else counted,
            note=f"indicative (n < {P99_MIN_N})" if indicative else None,
        ),
        Card("Samples measured (n)", fmt.quantity(n, digits=9)),
    ]


def work_cards(run: Run, result: Result | None) -> list[Card]:
    cards = [
        # The unit sits in the label: a card cuts a long value short.
        Card("Throughput (samples/s)", fmt.quantity(run.throughput_per_s)),
        Card("Measure window", fmt.duration(run.measure_s), "Steady state only."),
        Card("Wall time", fmt.duration(fmt.wall_seconds(run)), "Launch to the end."),
    ]
    throughput = result.throughput if result is not None else None
    if throughput and throughput.items_per_s not in (None, throughput.samples_per_s):
        items = fmt.quantity(throughput.items_per_s)
        cards.insert(1, Card("Items/s", items, "Samples per second × batch size."))
    if throughput and throughput.tflops is not None:
        cards.insert(1, Card("TFLOP/s", fmt.quantity(throughput.tflops)))
    return cards


def cost_cards(run: Run) -> list[Card]:
    cost = run_cost(run)
    billed = f"{fmt.duration(cost.billed_s)} billed" if cost.billed_s else None
    cards = [
        Card("Steady state / 1k samples", fmt.usd(cost.steady_per_1k_samples_usd)),
        Card("All-in / 1k samples", fmt.usd(cost.all_in_per_1k_samples_usd)),
        Card("Total billed", fmt.usd(cost.total_usd), billed),
    ]
    if run.output_tokens:
        cards += [
            Card("Steady state / 1M tokens", fmt.usd(cost.steady_per_1m_tokens_usd)),
            Card("All-in / 1M tokens", fmt.usd(cost.all_in_per_1m_tokens_usd)),
        ]
    return cards


def energy_cards(result: Result) -> list[Card]:
    energy = result.energy
    method = energy.method or "not measured"
    if energy.estimated:
        method += ", estimated"
    return [
        Card(
            "Energy",
            fmt.quantity(energy.joules, "J"),
            fmt.escape(energy.note) if energy.note else None,
            note=method,
        ),
        Card("Energy / sample", fmt.quantity(energy.joules_per_sample, "J")),
        Card("Mean power", fmt.quantity(energy.mean_power_w, "W")),
    ]


def token_cards(result: Result) -> list[Card]:
    tokens = result.tokens
    if tokens is None:
        return []
    return [
        Card(
            "TTFT p50",
            fmt.quantity(tokens.ttft_ms.p50, "ms"),
            f"n = {tokens.ttft_ms.n}",
        ),
        Card(
            "TPOT p50", fmt.quantity(tokens.tpot_ms.p50, "ms"), "First token excluded."
        ),
        Card(
            "ITL p50", fmt.quantity(tokens.itl_ms.p50, "ms"), f"n = {tokens.itl_ms.n}"
        ),
        Card("Output tokens/s", fmt.quantity(tokens.output_tokens_per_s)),
    ]


def start_cards(result: Result) -> list[Card]:
    cold, warmup = result.cold_start, result.warmup
    return [
        Card("Cold start: load", fmt.duration(cold.load_s)),
        Card("Cold start: first call", fmt.duration(cold.first_call_s)),
        Card("Warm-up calls", str(warmup.count), fmt.duration(warmup.duration_s)),
    ]


HOW_WE_MEASURE = """
- **Latency percentiles** (p50, p90, p95, p99) are computed by the agent over the
  measured samples only, by linear interpolation between the closest ranks (numpy's
  default method), and shown with their count *n*. Under 100 samples the p99 is
  little more than the maximum, so it is marked *indicative*.
- **Throughput** is measured samples divided by the measure window (items/s
  multiplies by the batch size). For matrix multiplies, **TFLOP/s** is the
  floating-point work of the measured products divided by their summed latency.
- **TTFT** (time to first token) runs from the start of a sample to its first
  generated token. **TPOT** (time per output token) is a sample's decode time
  per token after the first, (last − first) ÷ (tokens − 1): the first token is
  excluded. **ITL** (inter-token latency) is the distribution of every gap
  between consecutive tokens.
- **Cold start** is kept apart from steady state: *load* is loading the model
  or building the inputs, *first call* the latency of the first call after it.
- **Warm-up** calls follow the first call and come before measuring; neither
  counts in any statistic.
- **Energy** covers the measure window on every GPU of the workload. It is the
  difference of the GPU's own energy counter (`nvml_counter`) where every GPU
  has one that advanced, or else sampled power integrated over time
  (`power_integration`), marked *estimated*.
- **Cost** uses the price frozen at launch. *Steady state* is price × measure
  window ÷ samples: the work itself. *All-in* is price × billed seconds (pod
  created → termination confirmed) ÷ samples: image pull, load, warm-up and
  teardown included.
- **Simulated metrics**: a mock pod on a machine without a GPU simulates GPU
  readings, and mock-v0's latency follows the mock catalog's speed factor, so
  the whole path can run anywhere. Such runs say *simulated* on the run page
  (a warning, the measurements' heading, every chart title), in the Runs list,
  next to the catalog's measured costs, and in Compare (a warning, a flag on
  each row and the chart titles).
"""
