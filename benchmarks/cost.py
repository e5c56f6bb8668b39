"""The cost pass: server CPU microseconds per unit of work at fixed offered rates.

Throughput tables say how much a server does flat out, but when the load
generator saturates first (small echoes, 1 MiB echoes) the ratio between fast
servers is unknown.  The cost pass offers every server the same rates, below
saturation, and divides the server's CPU time by the units it completed: that
number does not depend on the client keeping up.

Rates: for each metric, COST_LEVELS (25 %, 50 %, 75 %) of the rate base, the
median capacity (throughput pass of the same run) of the slowest server in
the run that serves the scenario, leaving out servers below RATE_BASE_FLOOR
(a third) of the fastest one: a server that slow would pull the rates down to
where every other server idles and the per-unit cost is mostly wake-ups.
Those servers are still measured at the same rates; where they cannot keep
up, their cell says "saturated".  (A 10 % floor would leave out nobody: in
the 2026-11-30 run the slowest server had 11-24 % of the fastest one's
throughput on seven of the eight metrics, daphne on http_hello 11 %, so the
rates would have been 3-18 % of the fastest server's capacity.)

A level is saturated when the achieved rate is below 95 % of the offered one
(loadgen.SATURATION); a cell is saturated when most of its rounds were, else
it is the median over its unsaturated rounds.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COST_LEVELS = (0.25, 0.5, 0.75)
RATE_BASE_FLOOR = 1 / 3

Rounds = list[dict[str, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class CostMetric:
    """A throughput metric that also gets a cost row."""

    key: str  # the throughput metric (and loadgen scenario) it is paced from
    capacity_field: str  # field of the throughput result: units/s
    unit: str  # one unit of work
    rate_unit: str


COST_METRICS = (
    CostMetric("http_hello", "value", "request", "req/s"),
    CostMetric("ws_echo_small", "value", "message", "msg/s"),
    CostMetric("ws_echo_1k", "value", "message", "msg/s"),
    CostMetric("ws_echo_1m", "msg_per_s", "1 MiB message", "msg/s"),
    CostMetric("ws_handshake", "value", "handshake", "handshakes/s"),
    CostMetric("ws_broadcast", "value", "delivery", "deliveries/s"),
    CostMetric("ws_deflate_on", "value", "message", "msg/s"),
    CostMetric("ws_deflate_off", "value", "message", "msg/s"),
)
COST_BY_KEY = {metric.key: metric for metric in COST_METRICS}
RULE = (
    f"offered rates are {', '.join(f'{level:.0%}' for level in COST_LEVELS)} of the rate "
    "base: the median throughput (this run) of the slowest server serving the scenario, "
    f"leaving out servers below {RATE_BASE_FLOOR:.0%} of the fastest"
)


@dataclass(frozen=True, slots=True)
class RatePlan:
    """The offered rates of one metric, and where they come from."""

    base_server: str
    capacity: float  # base server's median units/s
    excluded: tuple[str, ...]  # below RATE_BASE_FLOOR of the fastest
    rates: tuple[float, ...]  # units/s, one per COST_LEVELS

    def describe(self) -> dict[str, Any]:
        return {
            "base_server": self.base_server,
            "capacity": self.capacity,
            "excluded": list(self.excluded),
            "rates": list(self.rates),
        }


def capacity(rounds: Rounds, metric: CostMetric) -> float | None:
    """Median units/s of one server in the throughput rounds (None: not served)."""
    values = [
        r[metric.key][metric.capacity_field]
        for r in rounds
        if r.get(metric.key, {}).get(metric.capacity_field) is not None
    ]
    return statistics.median(values) if values else None


def rate_plan(capacities: dict[str, float]) -> RatePlan | None:
    """The rate rule (module docstring) over the servers that have a capacity."""
    known = {name: c for name, c in capacities.items() if c > 0}
    if not known:
        return None
    fastest = max(known.values())
    eligible = {name: c for name, c in known.items() if c >= RATE_BASE_FLOOR * fastest}
    base_server = min(eligible, key=lambda name: eligible[name])
    base = eligible[base_server]
    return RatePlan(
        base_server=base_server,
        capacity=base,
        excluded=tuple(sorted(set(known) - set(eligible))),
        rates=tuple(base * level for level in COST_LEVELS),
    )


def plans(raw: dict[str, Rounds], scenarios: list[str]) -> dict[str, RatePlan]:
    """Rate plans of the cost metrics whose scenario ran, from the throughput rounds."""
    out = {}
    for metric in COST_METRICS:
        if metric.key not in scenarios:
            continue
        capacities = {
            name: c for name, rounds in raw.items() if (c := capacity(rounds, metric)) is not None
        }
        plan = rate_plan(capacities)
        if plan is not None:
            out[metric.key] = plan
    return out


def served(rounds: Rounds, plans: dict[str, RatePlan]) -> list[str]:
    """The planned cost scenarios a server had a throughput number for."""
    return [key for key in plans if capacity(rounds, COST_BY_KEY[key]) is not None]


def cell(results: list[dict[str, Any]], level: int) -> dict[str, Any] | None:
    """One server, metric and level over the rounds: median µs/unit or saturated."""
    levels = [r["levels"][level] for r in results if len(r.get("levels", ())) > level]
    if not levels:
        return None
    fine = [lv for lv in levels if not lv["saturated"] and lv["server_us_per_unit"] is not None]
    saturated = not fine or (len(levels) - len(fine)) * 2 > len(levels)
    return {
        "us_per_unit": None
        if saturated
        else statistics.median(lv["server_us_per_unit"] for lv in fine),
        "saturated": saturated,
        "achieved": statistics.median(lv["achieved"] for lv in levels),
        "rounds": len(levels),
        "saturated_rounds": len(levels) - len(fine),
    }


def cells(cost_raw: dict[str, Rounds], baseline: str) -> dict[str, dict[str, list[Any]]]:
    """server -> metric -> one cell per level, each with its ratio against `baseline`
    (baseline µs / server µs: > 1 is cheaper than the baseline)."""
    table: dict[str, dict[str, list[Any]]] = {}
    for name, rounds in cost_raw.items():
        table[name] = {}
        for metric in COST_METRICS:
            results = [r[metric.key] for r in rounds if metric.key in r]
            table[name][metric.key] = [cell(results, i) for i in range(len(COST_LEVELS))]
    for row in table.values():
        for key, levels in row.items():
            base_levels = table.get(baseline, {}).get(key) or [None] * len(COST_LEVELS)
            for own, base in zip(levels, base_levels, strict=True):
                if own is None:
                    continue
                mine, theirs = own["us_per_unit"], base and base["us_per_unit"]
                own["ratio"] = theirs / mine if mine and theirs else None
    return table


def format_rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def format_cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "—"
    if entry["saturated"]:
        return f"saturated ({format_rate(entry['achieved'])}/s)"
    shown = (
        f"{entry['us_per_unit']:,.1f}"
        if entry["us_per_unit"] < 1000
        else (f"{entry['us_per_unit']:,.0f}")
    )
    if entry.get("ratio") is not None:
        shown += f" ({entry['ratio']:.2f}x)"
    if entry["saturated_rounds"]:
        shown += f" [{entry['saturated_rounds']}/{entry['rounds']} sat.]"
    return shown


def header(report: dict[str, Any]) -> list[str]:
    """Lines for the top of the report: that the cost pass ran, its rate rule,
    and which servers were left out of which rate base."""
    cost = report.get("cost")
    if not cost or not cost["plans"]:
        return []
    left_out: dict[str, list[str]] = {}
    for key, plan in cost["plans"].items():
        for server in plan["excluded"]:
            left_out.setdefault(server, []).append(key)
    excluded = "; ".join(f"{server} ({', '.join(keys)})" for server, keys in left_out.items())
    return [
        "Server CPU per unit of work: see the section of that name below; "
        f"{cost['rule']}.  "
        + (
            f"Left out of the rate base (below {RATE_BASE_FLOOR:.0%} of the fastest): {excluded}."
            if excluded
            else "No server was left out of a rate base."
        ),
        "",
    ]


def markdown(report: dict[str, Any]) -> list[str]:
    """The report section: rate bases, then µs per unit per metric and level."""
    cost = report["cost"]
    servers: list[str] = report["servers"]
    baseline = report["baseline"]
    settings = report["settings"]
    lines = [
        "",
        "## Server CPU per unit of work",
        "",
        "Every server is offered the same fixed rates, below saturation, by a paced load "
        f"generator ({settings['cost_warmup']} s warm-up"
        + (
            f", {settings['cost_first_warmup']} s before the first rate"
            if "cost_first_warmup" in settings
            else ""
        )
        + f", {settings['cost_duration']} s "
        "measured per rate, the rates one after another on the same connections; HTTP on "
        "keep-alive connections of loadgen.py, not wrk).  Cell: server CPU microseconds "
        "(user + system, the whole process tree) per completed unit, median over the "
        f"rounds, and in brackets the ratio {baseline} / server (> 1: cheaper than "
        f'{baseline}).  Lower microseconds are better.  "saturated": the server completed '
        "less than 95 % of the offered rate in most rounds (its achieved rate is shown); "
        '"[k/n sat.]": k of n rounds were saturated and left out.',
        "",
        f"Rate rule: {cost['rule']}.",
        "",
        "| metric | unit of work | rate base (server, capacity) | left out of the base | "
        "offered rates |",
        "|---|---|---|---|---|",
    ]
    by_key = COST_BY_KEY
    for key, plan in cost["plans"].items():
        metric = by_key[key]
        lines.append(
            f"| {key} | {metric.unit} | {plan['base_server']}, "
            f"{format_rate(plan['capacity'])} {metric.rate_unit} | "
            f"{', '.join(plan['excluded']) or '—'} | "
            f"{' / '.join(format_rate(r) for r in plan['rates'])} {metric.rate_unit} |"
        )
    lines += [
        "",
        "| metric | offered | " + " | ".join(servers) + " |",
        "|---|---|" + "---:|" * len(servers),
    ]
    for key, plan in cost["plans"].items():
        for i, (level, rate) in enumerate(zip(COST_LEVELS, plan["rates"], strict=True)):
            row = [format_cell(cost["cells"].get(s, {}).get(key, [None] * 3)[i]) for s in servers]
            lines.append(
                f"| {key} µs/{by_key[key].unit} | {level:.0%} = {format_rate(rate)}/s | "
                + " | ".join(row)
                + " |"
            )
    return lines


def chart(report: dict[str, Any], path: Path) -> None:
    """One panel per level: for each metric, each server's ratio against the
    baseline (> 1: fewer µs per unit); saturated and missing cells are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cost = report["cost"]
    baseline = report["baseline"]
    servers = [s for s in report["servers"] if s != baseline]
    keys = list(cost["plans"])
    if not keys or not servers:
        return
    fig, axes = plt.subplots(
        len(COST_LEVELS),
        1,
        figsize=(max(9, len(keys) * 1.4), 4 * len(COST_LEVELS)),
        squeeze=False,
    )
    width = 0.8 / len(servers)
    for row, level in enumerate(COST_LEVELS):
        ax = axes[row][0]
        for i, server in enumerate(servers):
            heights = []
            for key in keys:
                entry = cost["cells"].get(server, {}).get(key, [None] * 3)[row]
                heights.append((entry or {}).get("ratio") or 0.0)
            ax.bar([x + i * width for x in range(len(keys))], heights, width, label=server)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(
            [x + 0.4 - width / 2 for x in range(len(keys))], keys, rotation=20, ha="right"
        )
        ax.set_ylabel(f"{baseline} µs / server µs\n(> 1 is cheaper)")
        ax.set_title(f"{level:.0%} of the rate base (no bar: saturated or not served)")
        if row == 0:
            ax.legend(fontsize="small", ncol=2)
    fig.suptitle(f"asgiws benchmarks {report['date']}: server CPU per unit of work")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
