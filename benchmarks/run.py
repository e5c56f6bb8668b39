"""Run every scenario against every server, several rounds; write the report.

    python benchmarks/run.py [--quick] [--only SERVER ...] [--scenarios NAME ...]
                             [--rounds 3] [--no-cost] [--autobahn] [--out DIR]
                             [--baseline-rev REV]

Servers are pinned to CPU 0, load generators (benchmarks/loadgen.py, wrk) to
CPU 1.  The runs go scenario by scenario: every round of every server for one
scenario, then the next scenario, each measurement on a freshly started server.
Servers follow each other in the same order in odd rounds and the reverse one
in even rounds.  So the measurements a ratio compares are minutes apart, not
a whole round of every scenario, and the machine's drift hits them alike.
Writes DIR/YYYY-MM-DD.json, .md and .png (ratios against uvicorn-fast).

The cost pass (on unless --no-cost; benchmarks/cost.py) follows the throughput
rounds with rounds of its own: every server offered 25/50/75 % of the slowest
server's capacity per metric, reporting server CPU microseconds per unit of
work (DIR/YYYY-MM-DD-cost.png, and a section of the .md/.json).

--baseline-rev REV adds the rows asgiws-fast@SHORT and asgiws-pure@SHORT: the
same servers running the asgiws of git revision REV (benchmarks/baseline.py),
in the same rounds, and a section comparing each to its current counterpart.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import cost
from benchmarks.baseline import BaselineError, BaselineTree, stale_extensions
from benchmarks.loadgen import server_cpu_seconds
from benchmarks.servers import (
    BASELINE,
    SERVERS,
    RunningServer,
    ServerSpec,
    free_port,
    spec_named,
)

HERE = Path(__file__).resolve().parent
LOADGEN_CPU = "1"
SCENARIO_TIMEOUT = 180.0
AUTOBAHN_TIMEOUT = 1200.0
# Handshakes leave one TIME_WAIT socket per connection (the server closes
# first) for the kernel's fixed 60 s.  A measurement that started among the
# ~42,000 one run leaves behind opened connections 4-17 % slower here (three
# pairs against one that started after they expired), so each waits for them
# to expire first (bounded).
CHURN_SCENARIOS = ("ws_handshake",)
TIME_WAIT_CALM = 1000
TIME_WAIT_WAIT = 65.0

# The order scenarios run in, each on a freshly started server.
SCENARIOS = (
    "ws_idle_rss",
    "http_hello",
    "ws_echo_small",
    "ws_echo_1k",
    "ws_echo_1m",
    "ws_handshake",
    "ws_broadcast",
    "ws_deflate",
)


@dataclass(frozen=True, slots=True)
class Metric:
    """One row of the table: a number pulled from one scenario's result."""

    key: str
    scenario: str  # loadgen scenario (or http_hello) that produces it
    field: str
    unit: str
    higher_is_better: bool = True


METRICS = (
    Metric("http_hello", "http_hello", "value", "req/s"),
    Metric("http_hello_p99", "http_hello", "p99_ms", "ms", higher_is_better=False),
    Metric("ws_echo_small", "ws_echo_small", "value", "msg/s"),
    Metric("ws_echo_1k", "ws_echo_1k", "value", "msg/s"),
    Metric("ws_echo_1m", "ws_echo_1m", "value", "MB/s"),
    Metric("ws_handshake", "ws_handshake", "value", "handshakes/s"),
    Metric("ws_idle_rss_2k", "ws_idle_rss", "kib_per_conn_2000", "KiB/conn", False),
    Metric("ws_idle_rss_10k", "ws_idle_rss", "kib_per_conn_10000", "KiB/conn", False),
    Metric("ws_broadcast", "ws_broadcast", "value", "deliveries/s"),
    Metric("ws_broadcast_p99", "ws_broadcast", "p99_ms", "ms", higher_is_better=False),
    Metric("ws_deflate_on", "ws_deflate_on", "value", "msg/s"),
    Metric("ws_deflate_off", "ws_deflate_off", "value", "msg/s"),
    Metric("autobahn_12_13", "autobahn", "seconds", "s", higher_is_better=False),
)
# The cost pass as rows of the "against baseline" section: server µs per unit
# at each rate level, from cost_rounds(); lower is better.
COST_ROWS = tuple(
    Metric(
        f"{m.key}_us@{level:.0%}",
        f"cost:{m.key}",
        f"us@{level:.0%}",
        f"µs/{m.unit}",
        higher_is_better=False,
    )
    for m in cost.COST_METRICS
    for level in cost.COST_LEVELS
)
# --baseline-rev: the servers that get an @REV row, and the allowed drop of a
# metric beyond its round-to-round spread.
BASELINE_REV_SERVERS = ("asgiws-fast", "asgiws-pure")
REGRESSION_TOLERANCE = 0.03
QUICK_IDLE = {"kib_per_conn_2000": "kib_per_conn_200", "kib_per_conn_10000": "kib_per_conn_1000"}


@dataclass(frozen=True, slots=True)
class Settings:
    duration: float
    warmup: float
    wrk_seconds: int
    quick: bool
    # The cost pass: seconds measured and warmed up per offered rate.
    cost_duration: float = 2.0
    cost_warmup: float = 0.5
    # ... and before the first rate: each measurement has a freshly started
    # server, and its first seconds cost more (asgiws-fast at 752
    # handshakes/s: 286-300 µs each after 0.5 s, 246-253 after 3 s).
    cost_first_warmup: float = 2.5


Rounds = list[dict[str, dict[str, Any]]]


# ---------------------------------------------------------------- measuring


def run_loadgen(
    scenario: str,
    server: RunningServer,
    settings: Settings,
    rates: Sequence[float] | None = None,
) -> dict[str, Any]:
    """One loadgen.py process: flat out, or paced at `rates` (units/s, the cost pass)."""
    duration, warmup = settings.duration, settings.warmup
    if rates is not None:
        duration, warmup = settings.cost_duration, settings.cost_warmup
    command = [
        "taskset",
        "-c",
        LOADGEN_CPU,
        sys.executable,
        str(HERE / "loadgen.py"),
        scenario,
        "--port",
        str(server.port),
        "--server-pid",
        str(server.pid),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
    ]
    if settings.quick:
        command.append("--quick")
    if rates is not None:
        command += ["--rate", *(f"{rate:.3f}" for rate in rates)]
        command += ["--first-warmup", str(settings.cost_first_warmup)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return {"value": None, "error": f"load generator timed out after {SCENARIO_TIMEOUT}s"}
    lines = done.stdout.strip().splitlines()
    if not lines:
        return {"value": None, "error": f"load generator crashed: {done.stderr[-500:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    if settings.quick:
        for full, small in QUICK_IDLE.items():
            if small in result:
                result[full] = result[small]
    return result


WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_P99 = re.compile(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def run_wrk(server: RunningServer, settings: Settings) -> dict[str, Any]:
    """`wrk -t1 -c64 -dNs --latency` -> req/s and p99; its CPU via RUSAGE_CHILDREN."""
    seconds = settings.wrk_seconds
    command = [
        "taskset",
        "-c",
        LOADGEN_CPU,
        "wrk",
        "-t1",
        "-c64",
        f"-d{seconds}s",
        "--latency",
        f"http://127.0.0.1:{server.port}/",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server0, time0 = server_cpu_seconds(server.pid), time.monotonic()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 30, check=False
        )
    except subprocess.TimeoutExpired:
        return {"value": None, "error": "wrk timed out"}
    elapsed = time.monotonic() - time0
    server1 = server_cpu_seconds(server.pid)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rate, p99 = WRK_RATE.search(done.stdout), WRK_P99.search(done.stdout)
    if rate is None or p99 is None:
        return {"value": None, "error": f"wrk output not understood: {done.stdout[-300:]}"}
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", done.stdout)
    result: dict[str, Any] = {
        "value": float(rate.group(1)),
        "unit": "req/s",
        "p99_ms": float(p99.group(1)) * WRK_UNITS[p99.group(2)],
        "loadgen_cpu": cpu / elapsed,
        "server_cpu": (server1 - server0) / elapsed,
    }
    if errors:
        result["wrk_errors"] = errors.group(0)
    return result


def run_autobahn(spec: ServerSpec, logs: Path) -> dict[str, Any]:
    """Autobahn 12.x/13.x (permessage-deflate) through kosoku: wall time."""
    kosoku = shutil.which("kosoku") or str(Path(sys.executable).with_name("kosoku"))
    port = free_port()
    outdir = logs / f"autobahn-{spec.name}"
    server = RunningServer(spec, port, logs / f"{spec.name}-autobahn.log")
    try:
        server.wait_ready()
        started = time.monotonic()
        done = subprocess.run(
            [kosoku, "-p", "2", "-i", "12.*", "-i", "13.*", "-o", str(outdir), f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=AUTOBAHN_TIMEOUT,
            check=False,
        )
        seconds = time.monotonic() - started
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return {"value": None, "error": str(exc)[-300:]}
    finally:
        server.stop()
    result: dict[str, Any] = {"value": seconds, "seconds": seconds, "exit_code": done.returncode}
    result["summary"] = (done.stdout.strip().splitlines() or [""])[-1][-200:]
    return result


Measure = Callable[[str, RunningServer], dict[str, Any]]


def throughput(settings: Settings) -> Measure:
    """A scenario flat out: wrk for http_hello, loadgen.py for the rest."""

    def measure(name: str, server: RunningServer) -> dict[str, Any]:
        if name == "http_hello":
            if not server.spec.http:
                return {"value": None, "note": "not an HTTP server"}
            return run_wrk(server, settings)
        return run_loadgen(name, server, settings)

    return measure


def paced(settings: Settings, plans: dict[str, cost.RatePlan]) -> Measure:
    """A scenario at its plan's offered rates (the cost pass), loadgen.py only."""

    def measure(name: str, server: RunningServer) -> dict[str, Any]:
        return run_loadgen(name, server, settings, plans[name].rates)

    return measure


def time_wait_sockets() -> int:
    """TCP sockets in TIME_WAIT on this machine (0 where /proc has no count)."""
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("tw") + 1])
    return 0


def settle_time_wait(limit: int = TIME_WAIT_CALM, timeout: float = TIME_WAIT_WAIT) -> int:
    """Wait until fewer than `limit` TIME_WAIT sockets remain, at most `timeout`
    seconds; return how many were left."""
    deadline = time.monotonic() + timeout
    while (left := time_wait_sockets()) >= limit and time.monotonic() < deadline:
        time.sleep(1.0)
    return left


def run_server_round(
    spec: ServerSpec, scenarios: list[str], measure: Measure, logs: Path, progress: Progress
) -> dict[str, dict[str, Any]]:
    """Start `spec` afresh, `measure` each scenario on it in order, stop it."""
    results: dict[str, dict[str, Any]] = {}
    left = settle_time_wait() if set(scenarios) & set(CHURN_SCENARIOS) else None
    port = free_port()
    server = RunningServer(spec, port, logs / f"{spec.name}-{int(time.time())}.log")
    try:
        try:
            server.wait_ready()
        except RuntimeError as exc:
            progress.note(f"{spec.name}: failed to start: {str(exc)[-300:]}")
            for name in scenarios:
                results[name] = {"value": None, "error": "server did not start"}
            return results
        for name in scenarios:
            if server.process.poll() is not None:
                results[name] = {"value": None, "error": "server exited"}
                continue
            results[name] = measure(name, server)
            if name in CHURN_SCENARIOS:
                results[name]["time_wait_at_start"] = left
            progress.step(spec.name, name, results[name])
    finally:
        server.stop()
    return results


class Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.heading = ""

    def step(self, server: str, scenario: str, result: dict[str, Any]) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        value = result.get("value")
        shown = (
            f"{value:,.1f} {result.get('unit', '')}"
            if value is not None
            else (result.get("error") or result.get("note") or "n/a")
        )
        if "levels" in result:
            shown = "µs/unit " + " / ".join(
                "saturated" if lv["saturated"] else f"{lv['server_us_per_unit']:,.1f}"
                for lv in result["levels"]
            )
        cpu = ""
        if "loadgen_cpu" in result:
            server_cpu, loadgen_cpu = result.get("server_cpu", 0.0), result["loadgen_cpu"]
            cpu = f"  [cpu server {server_cpu:.2f} loadgen {loadgen_cpu:.2f}]"
        print(
            f"[{self.done}/{self.total} {elapsed:5.0f}s, ~{eta:4.0f}s left] "
            f"{server:20} {scenario:15} {shown}{cpu}",
            flush=True,
        )

    def note(self, text: str) -> None:
        print(text, flush=True)

    def section(self, heading: str) -> None:
        """Print `heading` unless it is the one printed last."""
        if heading != self.heading:
            self.heading = heading
            self.note(heading)


# ---------------------------------------------------------------- reporting


def values_of(rounds: list[dict[str, dict[str, Any]]], metric: Metric) -> list[float]:
    """The metric's value in each round that produced one."""
    return [
        r[metric.scenario][metric.field]
        for r in rounds
        if metric.scenario in r and r[metric.scenario].get(metric.field) is not None
    ]


def median_of(rounds: list[dict[str, dict[str, Any]]], metric: Metric) -> float | None:
    values = values_of(rounds, metric)
    return statistics.median(values) if values else None


def spread_of(
    rounds: list[dict[str, dict[str, Any]]], metric: Metric
) -> tuple[float, float] | None:
    """Round-to-round spread: (min, max) across rounds."""
    values = values_of(rounds, metric)
    return (min(values), max(values)) if values else None


def cpu_median(rounds: list[dict[str, dict[str, Any]]], scenario: str, key: str) -> float | None:
    values = [r[scenario][key] for r in rounds if scenario in r and key in r[scenario]]
    return statistics.median(values) if values else None


def ratio(metric: Metric, value: float | None, base: float | None) -> float | None:
    """> 1 means better than the baseline, whatever the metric's direction."""
    if value is None or base is None or value <= 0 or base <= 0:
        return None
    return value / base if metric.higher_is_better else base / value


def against_baseline(
    metric: Metric,
    current: list[dict[str, dict[str, Any]]],
    baseline: list[dict[str, dict[str, Any]]],
) -> dict[str, Any]:
    """One metric of a current server against its @REV row, from the rounds of both.

    `ratio` is current/baseline oriented like the other ratios (> 1 is better);
    `ratio_range` its extremes over the two sides' min/max rounds.  `worse`: the
    ratio is below `limit`, that is 1 - REGRESSION_TOLERANCE - the larger
    relative spread ((max - min) / median) of the two sides.
    """
    now, then = median_of(current, metric), median_of(baseline, metric)
    now_spread, then_spread = spread_of(current, metric), spread_of(baseline, metric)
    r = ratio(metric, now, then)
    entry: dict[str, Any] = {
        "current": now,
        "current_spread": now_spread,
        "baseline": then,
        "baseline_spread": then_spread,
        "ratio": r,
        "ratio_range": None,
        "limit": None,
        "worse": False,
    }
    if r is None or now is None or then is None or now_spread is None or then_spread is None:
        return entry
    extremes = [ratio(metric, a, b) for a in now_spread for b in then_spread]
    known = [x for x in extremes if x is not None]
    if len(known) == len(extremes):
        entry["ratio_range"] = (min(known), max(known))
    spread = max((now_spread[1] - now_spread[0]) / now, (then_spread[1] - then_spread[0]) / then)
    entry["limit"] = 1.0 - REGRESSION_TOLERANCE - spread
    entry["worse"] = r < entry["limit"]
    return entry


def cost_rounds(rounds: Rounds) -> Rounds:
    """Cost-pass rounds reshaped for against_baseline and COST_ROWS: per round,
    {"cost:METRIC": {"us@25%": µs per unit, ...}}, None for a saturated level."""
    shaped: Rounds = []
    for r in rounds:
        row: dict[str, dict[str, Any]] = {}
        for key, result in r.items():
            row[f"cost:{key}"] = {
                f"us@{level:.0%}": None if lv["saturated"] else lv["server_us_per_unit"]
                for level, lv in zip(cost.COST_LEVELS, result.get("levels", ()), strict=False)
            }
        shaped.append(row)
    return shaped


def machine() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    versions = {}
    for package in (
        "asgiws",
        "uvicorn",
        "hypercorn",
        "daphne",
        "granian",
        "websockets",
        "wsproto",
        "httptools",
        "uvloop",
        "h11",
        "picows",
        "kosoku",
    ):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    versions["wrk"] = (wrk.stdout + wrk.stderr).split("[")[0].replace("wrk", "").strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "versions": versions,
    }


def format_value(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def markdown(report: dict[str, Any]) -> str:
    servers: list[str] = report["servers"]
    medians: dict[str, dict[str, float | None]] = report["medians"]
    ratios: dict[str, dict[str, float | None]] = report["ratios"]
    info = report["machine"]
    lines = [
        f"# asgiws benchmarks, {report['date']}",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, "
        f"Python {info['python']}.  Servers pinned to CPU 0, load generator to CPU 1; "
        f"{report['rounds']} round(s), medians; {report['settings']['duration']} s per "
        f"WebSocket measurement, wrk {report['settings']['wrk_seconds']} s.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + ".",
        "",
        f"Cells: median (ratio against {BASELINE}; > 1 is better, also for the "
        "lower-is-better rows ms, KiB/conn and s).",
        "",
        *cost.header(report),
        "| metric | unit | " + " | ".join(servers) + " |",
        "|---|---|" + "---:|" * len(servers),
    ]
    for metric in METRICS:
        if all(medians[s].get(metric.key) is None for s in servers):
            continue
        cells = []
        for server in servers:
            value, r = medians[server].get(metric.key), ratios[server].get(metric.key)
            cells.append(format_value(value) + (f" ({r:.2f}x)" if r is not None else ""))
        arrow = "" if metric.higher_is_better else " (lower is better)"
        lines.append(f"| {metric.key} | {metric.unit}{arrow} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "CPU share during each measurement, server / load generator (1.00 = one core "
        "busy).  A load generator near 1.00 with the server below it means the number "
        "is client-bound.",
        "",
        "| scenario | " + " | ".join(servers) + " |",
        "|---|" + "---:|" * len(servers),
    ]
    for scenario in report["scenarios_run"]:
        cells = []
        for server in servers:
            cpu = report["cpu"][server].get(scenario, {})
            s, g = cpu.get("server_cpu"), cpu.get("loadgen_cpu")
            cells.append(f"{s:.2f} / {g:.2f}" if s is not None and g is not None else "—")
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    if report.get("cost") and report["cost"]["plans"]:
        lines += cost.markdown(report)
    if report.get("baseline_rev"):
        lines += baseline_markdown(report)
    errors = report.get("errors", [])
    if errors:
        lines += ["", "Errors:", ""] + [f"- {e}" for e in errors]
    return "\n".join(lines) + "\n"


def format_spread(spread: list[float] | tuple[float, float] | None) -> str:
    return f"{format_value(spread[0])}-{format_value(spread[1])}" if spread else "—"


def baseline_markdown(report: dict[str, Any]) -> list[str]:
    """The "against baseline" section: each NAME against NAME@SHORT."""
    rev = report["baseline_rev"]
    percent = f"{REGRESSION_TOLERANCE:.0%}"
    lines = [
        "",
        f'## Against baseline {rev["rev"]} ({rev["short"]}, "{rev["subject"]}")',
        "",
        f"NAME@{rev['short']} is NAME running the asgiws of commit {rev['commit']} "
        "(a git worktree, C extension built in place), in the same rounds, interleaved "
        f"with the others.  {rev['app']}.",
        "",
        "Per metric: median of the rounds and, in brackets, their min-max.  Ratio: "
        "current / baseline, > 1 is better (baseline / current for ms, KiB/conn and s), "
        "in brackets its range over the extreme rounds.  Limit: 1 - "
        f"{percent} - the larger relative spread ((max - min) / median) of the two "
        "sides; **worse** where the ratio is below it.",
    ]
    if report["rounds"] < 2:
        lines += [
            "",
            f"With {report['rounds']} round there is no spread: the limit is "
            f"{percent} alone.  Use 3 rounds or more for a verdict.",
        ]
    flagged = []
    for current, compared in report["against_baseline"].items():
        lines += [
            "",
            f"### {current} against {compared['baseline']}",
            "",
            "| metric | unit | current | baseline | ratio | limit | |",
            "|---|---|---:|---:|---:|---:|---|",
        ]
        for metric in METRICS + COST_ROWS:
            e = compared["metrics"].get(metric.key)
            if e is None or (e["current"] is None and e["baseline"] is None):
                continue
            r, span, limit = e["ratio"], e["ratio_range"], e["limit"]
            shown = (
                "—"
                if r is None
                else f"{r:.3f}" + (f" ({span[0]:.3f}-{span[1]:.3f})" if span else "")
            )
            arrow = "" if metric.higher_is_better else " (lower is better)"
            flag = ""
            if e["worse"]:
                flag = f"**worse by {1 - r:.1%}**"
                flagged.append(f"{current} {metric.key}")
            lines.append(
                f"| {metric.key} | {metric.unit}{arrow} "
                f"| {format_value(e['current'])} ({format_spread(e['current_spread'])}) "
                f"| {format_value(e['baseline'])} ({format_spread(e['baseline_spread'])}) "
                f"| {shown} | {'—' if limit is None else f'{limit:.3f}'} | {flag} |"
            )
    lines.append("")
    if flagged:
        lines.append(
            f"**{len(flagged)} worse than baseline beyond {percent} + spread:** "
            + ", ".join(flagged)
            + "."
        )
    else:
        lines.append(
            f"No metric is worse than baseline by more than {percent} beyond its "
            "round-to-round spread."
        )
    return lines


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = [s for s in report["servers"] if s != BASELINE]
    metrics = [
        m.key
        for m in METRICS
        if any(report["ratios"][s].get(m.key) is not None for s in report["servers"])
    ]
    against: dict[str, Any] = report.get("against_baseline") or {}
    rev_metrics = [
        m.key
        for m in METRICS + COST_ROWS
        if any((c["metrics"].get(m.key) or {}).get("ratio") is not None for c in against.values())
    ]
    panels = int(bool(metrics and servers)) + int(bool(rev_metrics))
    if not panels:
        return
    wide = max(len(metrics), len(rev_metrics))
    fig, axes = plt.subplots(panels, 1, figsize=(max(8, wide * 1.2), 5 * panels), squeeze=False)
    if metrics and servers:
        ax = axes[0][0]
        width = 0.8 / len(servers)
        for i, server in enumerate(servers):
            heights = [report["ratios"][server].get(m) or 0.0 for m in metrics]
            ax.bar([x + i * width for x in range(len(metrics))], heights, width, label=server)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(
            [x + 0.4 - width / 2 for x in range(len(metrics))], metrics, rotation=30, ha="right"
        )
        ax.set_ylabel(f"ratio vs {BASELINE} (> 1 is better)")
        ax.set_title(f"asgiws benchmarks {report['date']}")
        ax.legend(fontsize="small")
    if rev_metrics:
        ax = axes[-1][0]
        width = 0.8 / len(against)
        flagged = []
        for i, (current, compared) in enumerate(against.items()):
            entries = [compared["metrics"][m] for m in rev_metrics]
            heights = [e["ratio"] or 0.0 for e in entries]
            spans = [e["ratio_range"] or (h, h) for e, h in zip(entries, heights, strict=True)]
            low = [max(h - s[0], 0.0) for h, s in zip(heights, spans, strict=True)]
            high = [max(s[1] - h, 0.0) for h, s in zip(heights, spans, strict=True)]
            bars = ax.bar(
                [x + i * width for x in range(len(rev_metrics))],
                heights,
                width,
                yerr=[low, high],
                capsize=3,
                label=current,
            )
            flagged += [bar for bar, e in zip(bars, entries, strict=True) if e["worse"]]
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.axhline(1.0 - REGRESSION_TOLERANCE, color="red", linewidth=0.8, linestyle="--")
        ax.set_xticks(
            [x + 0.4 - width / 2 for x in range(len(rev_metrics))],
            rev_metrics,
            rotation=30,
            ha="right",
        )
        rev = report["baseline_rev"]
        ax.set_ylabel(f"current / {rev['short']} (> 1 is better)")
        ax.set_title(
            f"against baseline {rev['rev']} ({rev['short']}): error bars = extreme "
            f"rounds, red edge = worse beyond {REGRESSION_TOLERANCE:.0%} + spread"
        )
        ax.legend(fontsize="small")
        for bar in flagged:  # after the legend, whose patches copy the first bar
            bar.set_edgecolor("red")
            bar.set_linewidth(2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 round, short measurements, fewer connections (smoke test)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="SERVER",
        choices=[s.name for s in SERVERS],
        help="servers to run",
    )
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, help="scenarios to run")
    parser.add_argument("--rounds", type=int, help="rounds per server (default 3, quick 1)")
    parser.add_argument(
        "--autobahn", action="store_true", help="also time Autobahn 12.x/13.x per server (slow)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results", help="report directory")
    parser.add_argument(
        "--cost",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the throughput rounds, measure server CPU µs per unit of work at "
        "25/50/75 %% of the slowest server's capacity (default: on)",
    )
    parser.add_argument(
        "--baseline-rev",
        metavar="REV",
        help="also run asgiws-fast/asgiws-pure (those chosen) from git revision REV, "
        "checked out into a temporary worktree, as NAME@SHORT rows, and compare",
    )
    return parser.parse_args(argv)


def expand(scenarios: list[str]) -> list[str]:
    out: list[str] = []
    for name in scenarios:
        out += ["ws_deflate_on", "ws_deflate_off"] if name == "ws_deflate" else [name]
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    settings = (
        Settings(
            duration=1.5,
            warmup=0.3,
            wrk_seconds=2,
            quick=True,
            cost_duration=1.0,
            cost_warmup=0.3,
            cost_first_warmup=0.6,
        )
        if args.quick
        else Settings(duration=4.0, warmup=0.5, wrk_seconds=10, quick=False)
    )
    rounds = args.rounds or (1 if args.quick else 3)
    specs = [spec_named(n) for n in args.only] if args.only else list(SERVERS)
    chosen = [s for s in SCENARIOS if args.scenarios is None or s in args.scenarios]
    scenarios = expand(chosen)
    tree: BaselineTree | None = None
    pairs: dict[str, str] = {}
    if args.baseline_rev is not None:
        if not any(s.name in BASELINE_REV_SERVERS for s in specs):
            print(
                f"--baseline-rev needs one of {', '.join(BASELINE_REV_SERVERS)} in --only",
                file=sys.stderr,
            )
            return 2
        print(f"checking out and building {args.baseline_rev} ...", flush=True)
        try:
            tree = BaselineTree(args.baseline_rev)
        except BaselineError as exc:
            print(f"--baseline-rev: {exc}", file=sys.stderr)
            return 2
        print(f"baseline {tree.short} ({tree.subject}) in {tree.root}; {tree.app_note}", flush=True)
        for stale in stale_extensions():
            print(
                f"warning: {stale}: the current rows may not run the current C code "
                "(python setup.py build_ext --inplace, or pip install -e .)",
                flush=True,
            )
        specs, pairs = with_baseline_rows(specs, tree)
        # A plain `kill` must not leave the worktree behind: SystemExit runs `finally`.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        raw, cost_raw, plans = run_rounds(
            specs, scenarios, rounds, settings, args.autobahn, args.cost
        )
        report = build_report(
            raw,
            specs,
            scenarios,
            rounds,
            settings,
            pairs,
            None if tree is None else tree.describe(),
            cost_raw if args.cost else None,
            plans,
        )
    finally:
        if tree is not None:
            tree.close()
    write_report(report, args.out, args.quick)
    return 0


def with_baseline_rows(
    specs: list[ServerSpec], tree: BaselineTree
) -> tuple[list[ServerSpec], dict[str, str]]:
    """Each BASELINE_REV_SERVERS spec followed by its @REV twin; current -> twin names."""
    out: list[ServerSpec] = []
    pairs: dict[str, str] = {}
    for spec in specs:
        out.append(spec)
        if spec.name in BASELINE_REV_SERVERS:
            twin = tree.spec(spec)
            out.append(twin)
            pairs[spec.name] = twin.name
    return out, pairs


def round_order(specs: list[ServerSpec], number: int) -> list[ServerSpec]:
    """`specs` in odd rounds, reversed in even ones: no server always goes first,
    and each current/@REV pair (adjacent in `specs`) swaps its order too."""
    return list(specs) if number % 2 else list(reversed(specs))


def schedule(
    specs: list[ServerSpec], scenarios: list[str], rounds: int
) -> list[tuple[int, str, ServerSpec]]:
    """(round index, scenario, server) in the order they run: scenario by
    scenario, every round of it, the servers in `round_order` within a round."""
    return [
        (number - 1, scenario, spec)
        for scenario in scenarios
        for number in range(1, rounds + 1)
        for spec in round_order(specs, number)
    ]


def run_rounds(
    specs: list[ServerSpec],
    scenarios: list[str],
    rounds: int,
    settings: Settings,
    autobahn: bool,
    with_cost: bool = False,
) -> tuple[dict[str, Rounds], dict[str, Rounds], dict[str, cost.RatePlan]]:
    """The throughput rounds, then (`with_cost`) the cost rounds, whose rates come
    from the throughput medians; both follow `schedule`, each measurement on a
    freshly started server."""
    logs = Path(tempfile.mkdtemp(prefix="asgiws-bench-"))
    costed = [m.key for m in cost.COST_METRICS if m.key in scenarios] if with_cost else []
    print(
        f"{len(specs)} servers x {len(scenarios)} scenarios x {rounds} rounds"
        + (f", then {len(costed)} cost scenarios x {rounds} rounds" if costed else "")
        + f"; server logs in {logs}",
        flush=True,
    )
    progress = Progress(len(specs) * len(scenarios) * rounds)
    raw: dict[str, Rounds] = {s.name: [{} for _ in range(rounds)] for s in specs}
    measure = throughput(settings)
    for index, scenario, spec in schedule(specs, scenarios, rounds):
        progress.section(f"--- {scenario}, round {index + 1}/{rounds}")
        raw[spec.name][index].update(run_server_round(spec, [scenario], measure, logs, progress))
    cost_raw: dict[str, Rounds] = {s.name: [{} for _ in range(rounds)] for s in specs}
    plans = cost.plans(raw, costed)
    progress.total += sum(len(cost.served(raw[s.name], plans)) for s in specs) * rounds
    for index, scenario, spec in schedule(specs, list(plans), rounds):
        if scenario in cost.served(raw[spec.name], plans):
            progress.section(f"--- cost of {scenario}, round {index + 1}/{rounds}")
            cost_raw[spec.name][index].update(
                run_server_round(spec, [scenario], paced(settings, plans), logs, progress)
            )
    cost_raw = {name: [r for r in rs if r] for name, rs in cost_raw.items()}
    if autobahn:
        for spec in specs:
            progress.note(f"autobahn 12.x/13.x against {spec.name} ...")
            outcome = run_autobahn(spec, logs)
            progress.note(f"  {outcome}")
            for result in raw[spec.name]:
                result["autobahn"] = outcome
    return raw, cost_raw, plans


def build_report(
    raw: dict[str, list[dict[str, dict[str, Any]]]],
    specs: list[ServerSpec],
    scenarios: list[str],
    rounds: int,
    settings: Settings,
    pairs: dict[str, str] | None = None,
    baseline_rev: dict[str, Any] | None = None,
    cost_raw: dict[str, Rounds] | None = None,
    plans: dict[str, cost.RatePlan] | None = None,
) -> dict[str, Any]:
    """Medians, ratios and CPU shares; with `baseline_rev`, each current server of
    `pairs` (current name -> @REV name) against its @REV row; with `cost_raw`,
    the cost pass (µs per unit at the `plans` rates)."""
    names = [s.name for s in specs]
    medians = {n: {m.key: median_of(raw[n], m) for m in METRICS} for n in names}
    base = medians.get(BASELINE, {})
    ratios = {
        n: {m.key: ratio(m, medians[n][m.key], base.get(m.key)) for m in METRICS} for n in names
    }
    cpu = {
        n: {
            sc: {k: cpu_median(raw[n], sc, k) for k in ("server_cpu", "loadgen_cpu")}
            for sc in scenarios
        }
        for n in names
    }
    errors = sorted(
        {
            f"{n} {sc}: {res.get('error')}"
            for n in names
            for r in raw[n] + (cost_raw or {}).get(n, [])
            for sc, res in r.items()
            if res.get("error")
        }
    )
    compared = {
        current: {
            "baseline": twin,
            "metrics": {
                **{m.key: against_baseline(m, raw[current], raw[twin]) for m in METRICS},
                **{
                    m.key: against_baseline(
                        m, cost_rounds(cost_raw[current]), cost_rounds(cost_raw[twin])
                    )
                    for m in COST_ROWS
                    if cost_raw is not None
                },
            },
        }
        for current, twin in (pairs or {}).items()
    }
    return {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "rounds": rounds,
        "settings": {
            "duration": settings.duration,
            "warmup": settings.warmup,
            "wrk_seconds": settings.wrk_seconds,
            "quick": settings.quick,
            "cost_duration": settings.cost_duration,
            "cost_warmup": settings.cost_warmup,
            "cost_first_warmup": settings.cost_first_warmup,
        },
        "baseline": BASELINE,
        "servers": names,
        "scenarios_run": scenarios,
        "medians": medians,
        "ratios": ratios,
        "cpu": cpu,
        "errors": errors,
        "baseline_rev": None if baseline_rev is None else {**baseline_rev, "pairs": pairs},
        "against_baseline": compared,
        "cost": None
        if cost_raw is None
        else {
            "levels": list(cost.COST_LEVELS),
            "rule": cost.RULE,
            "plans": {key: plan.describe() for key, plan in (plans or {}).items()},
            "cells": cost.cells(cost_raw, BASELINE),
        },
        "raw": raw,
        "cost_raw": cost_raw,
    }


def write_report(report: dict[str, Any], out: Path, quick: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = report["date"] + ("-quick" if quick else "")
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown(report))
    chart(report, out / f"{stem}.png")
    written = ".json/.md/.png"
    if report.get("cost") and report["cost"]["plans"]:
        cost.chart(report, out / f"{stem}-cost.png")
        written += f" and {stem}-cost.png"
    print(markdown(report))
    print(f"wrote {out / stem}{written}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
