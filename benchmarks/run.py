"""Run every scenario against every server, several rounds; write the report.

    python benchmarks/run.py [--quick] [--only SERVER ...] [--scenarios NAME ...]
                             [--rounds 3] [--autobahn] [--out DIR]

Servers are pinned to CPU 0, load generators (benchmarks/loadgen.py, wrk) to
CPU 1.  Each round starts every server afresh and runs all scenarios on it;
rounds interleave servers so slow drift of the machine hits all of them alike.
Writes DIR/YYYY-MM-DD.json, .md and .png (ratios against uvicorn-fast).
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
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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

# Scenario order on a fresh server: idle RSS first, so its baseline is not
# inflated by buffers earlier scenarios left behind.
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
QUICK_IDLE = {"kib_per_conn_2000": "kib_per_conn_200", "kib_per_conn_10000": "kib_per_conn_1000"}


@dataclass(frozen=True, slots=True)
class Settings:
    duration: float
    warmup: float
    wrk_seconds: int
    quick: bool


# ---------------------------------------------------------------- measuring


def run_loadgen(scenario: str, server: RunningServer, settings: Settings) -> dict[str, Any]:
    command = [
        "taskset", "-c", LOADGEN_CPU, sys.executable, str(HERE / "loadgen.py"), scenario,
        "--port", str(server.port), "--server-pid", str(server.pid),
        "--duration", str(settings.duration), "--warmup", str(settings.warmup),
    ]
    if settings.quick:
        command.append("--quick")
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
        "taskset", "-c", LOADGEN_CPU, "wrk", "-t1", "-c64", f"-d{seconds}s", "--latency",
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
            [kosoku, "-p", "2", "-i", "12.*", "-i", "13.*", "-o", str(outdir),
             f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=AUTOBAHN_TIMEOUT, check=False,
        )
        seconds = time.monotonic() - started
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return {"value": None, "error": str(exc)[-300:]}
    finally:
        server.stop()
    result: dict[str, Any] = {"value": seconds, "seconds": seconds, "exit_code": done.returncode}
    result["summary"] = (done.stdout.strip().splitlines() or [""])[-1][-200:]
    return result


def run_server_round(
    spec: ServerSpec, scenarios: list[str], settings: Settings, logs: Path, progress: Progress
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
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
            if name == "http_hello":
                results[name] = run_wrk(server, settings)
            else:
                results[name] = run_loadgen(name, server, settings)
            progress.step(spec.name, name, results[name])
    finally:
        server.stop()
    return results


class Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()

    def step(self, server: str, scenario: str, result: dict[str, Any]) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        value = result.get("value")
        shown = f"{value:,.1f} {result.get('unit', '')}" if value is not None else (
            result.get("error") or result.get("note") or "n/a"
        )
        cpu = ""
        if "loadgen_cpu" in result:
            server_cpu, loadgen_cpu = result.get("server_cpu", 0.0), result["loadgen_cpu"]
            cpu = f"  [cpu server {server_cpu:.2f} loadgen {loadgen_cpu:.2f}]"
        print(
            f"[{self.done}/{self.total} {elapsed:5.0f}s, ~{eta:4.0f}s left] "
            f"{server:13} {scenario:15} {shown}{cpu}",
            flush=True,
        )

    def note(self, text: str) -> None:
        print(text, flush=True)


# ---------------------------------------------------------------- reporting


def median_of(rounds: list[dict[str, dict[str, Any]]], metric: Metric) -> float | None:
    values = [
        r[metric.scenario][metric.field]
        for r in rounds
        if metric.scenario in r and r[metric.scenario].get(metric.field) is not None
    ]
    return statistics.median(values) if values else None


def cpu_median(rounds: list[dict[str, dict[str, Any]]], scenario: str, key: str) -> float | None:
    values = [r[scenario][key] for r in rounds if scenario in r and key in r[scenario]]
    return statistics.median(values) if values else None


def ratio(metric: Metric, value: float | None, base: float | None) -> float | None:
    """> 1 means better than the baseline, whatever the metric's direction."""
    if value is None or base is None or value <= 0 or base <= 0:
        return None
    return value / base if metric.higher_is_better else base / value


def machine() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    versions = {}
    for package in ("asgiws", "uvicorn", "hypercorn", "daphne", "granian", "websockets",
                    "wsproto", "httptools", "uvloop", "h11", "picows", "kosoku"):
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
    errors = report.get("errors", [])
    if errors:
        lines += ["", "Errors:", ""] + [f"- {e}" for e in errors]
    return "\n".join(lines) + "\n"


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = [s for s in report["servers"] if s != BASELINE]
    metrics = [
        m.key for m in METRICS
        if any(report["ratios"][s].get(m.key) is not None for s in report["servers"])
    ]
    if not metrics or not servers:
        return
    fig, ax = plt.subplots(figsize=(max(8, len(metrics) * 1.2), 5))
    width = 0.8 / len(servers)
    for i, server in enumerate(servers):
        heights = [report["ratios"][server].get(m) or 0.0 for m in metrics]
        ax.bar([x + i * width for x in range(len(metrics))], heights, width, label=server)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(metrics))], metrics, rotation=30,
                  ha="right")
    ax.set_ylabel(f"ratio vs {BASELINE} (> 1 is better)")
    ax.set_title(f"asgiws benchmarks {report['date']}")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 round, short measurements, fewer connections (smoke test)")
    parser.add_argument("--only", nargs="+", metavar="SERVER",
                        choices=[s.name for s in SERVERS], help="servers to run")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, help="scenarios to run")
    parser.add_argument("--rounds", type=int, help="rounds per server (default 3, quick 1)")
    parser.add_argument("--autobahn", action="store_true",
                        help="also time Autobahn 12.x/13.x per server (slow)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="report directory")
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
        Settings(duration=1.5, warmup=0.3, wrk_seconds=2, quick=True)
        if args.quick
        else Settings(duration=4.0, warmup=0.5, wrk_seconds=10, quick=False)
    )
    rounds = args.rounds or (1 if args.quick else 3)
    specs = [spec_named(n) for n in args.only] if args.only else list(SERVERS)
    chosen = [s for s in SCENARIOS if args.scenarios is None or s in args.scenarios]
    scenarios = expand(chosen)
    logs = Path(tempfile.mkdtemp(prefix="asgiws-bench-"))
    print(f"{len(specs)} servers x {len(scenarios)} scenarios x {rounds} rounds; "
          f"server logs in {logs}", flush=True)

    progress = Progress(len(specs) * len(scenarios) * rounds)
    raw: dict[str, list[dict[str, dict[str, Any]]]] = {s.name: [] for s in specs}
    for round_number in range(1, rounds + 1):
        progress.note(f"--- round {round_number}/{rounds}")
        for spec in specs:
            raw[spec.name].append(run_server_round(spec, scenarios, settings, logs, progress))
    if args.autobahn:
        for spec in specs:
            progress.note(f"autobahn 12.x/13.x against {spec.name} ...")
            outcome = run_autobahn(spec, logs)
            progress.note(f"  {outcome}")
            for result in raw[spec.name]:
                result["autobahn"] = outcome

    report = build_report(raw, specs, scenarios, rounds, settings)
    write_report(report, args.out, args.quick)
    return 0


def build_report(
    raw: dict[str, list[dict[str, dict[str, Any]]]],
    specs: list[ServerSpec],
    scenarios: list[str],
    rounds: int,
    settings: Settings,
) -> dict[str, Any]:
    names = [s.name for s in specs]
    medians = {n: {m.key: median_of(raw[n], m) for m in METRICS} for n in names}
    base = medians.get(BASELINE, {})
    ratios = {
        n: {m.key: ratio(m, medians[n][m.key], base.get(m.key)) for m in METRICS}
        for n in names
    }
    cpu = {
        n: {
            sc: {k: cpu_median(raw[n], sc, k) for k in ("server_cpu", "loadgen_cpu")}
            for sc in scenarios
        }
        for n in names
    }
    errors = sorted({
        f"{n} {sc}: {res.get('error')}"
        for n in names for r in raw[n] for sc, res in r.items() if res.get("error")
    })
    return {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "rounds": rounds,
        "settings": {"duration": settings.duration, "warmup": settings.warmup,
                     "wrk_seconds": settings.wrk_seconds, "quick": settings.quick},
        "baseline": BASELINE,
        "servers": names,
        "scenarios_run": scenarios,
        "medians": medians,
        "ratios": ratios,
        "cpu": cpu,
        "errors": errors,
        "raw": raw,
    }


def write_report(report: dict[str, Any], out: Path, quick: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = report["date"] + ("-quick" if quick else "")
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown(report))
    chart(report, out / f"{stem}.png")
    print(markdown(report))
    print(f"wrote {out / stem}.json/.md/.png", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
