"""Fan-out benchmark of `asgiws.Hub` against a loop of `await ws.send`.

    .venv/bin/python benchmarks/hub.py [--rounds N] [--sizes 1000 10000] [--duration S]

Rows (every server one process pinned to CPU 0, the load generator on CPU 1):
- uvicorn-loop: benchmarks/apps.py under uvicorn (httptools, uvloop,
  websockets-sansio): the control route loops `await send(...)` over the group;
- asgiws-loop: the same app under asgiws (httptools, uvloop): no hub;
- asgiws-hub: benchmarks/hub_app.py under asgiws, memory:// hub: one
  `hub.publish()` per message, framed once, written to each connection;
- asgiws-hub-redis: hub_app.py in two asgiws processes and a redis-server
  (all three on CPU 0); the subscribers are split over both processes, the
  messages are published in the first: every delivery crossed Redis.

For each row and subscriber count, two phases on the same connections,
64-byte binary messages carrying their send time:
- saturate: 4 fan-outs in flight, a new one as soon as one completes:
  deliveries/s, deliveries per server CPU second (server processes plus
  redis-server), p50/p99 delivery latency under full load;
- paced: one message every 100 ms: p50/p99 delivery latency (the target:
  p99 under 50 ms at 10,000 subscribers).

Writes benchmarks/results/hub-YYYY-MM-DD.{json,md,png}.  Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.servers import (  # noqa: E402
    SERVER_CPU,
    RunningServer,
    ServerSpec,
    free_port,
    raise_nofile_limit,
)

LOADGEN_CPU = "1"
PACE = 0.1  # seconds between messages in the paced phase
FAST = ("--no-access-log", "--http", "httptools", "--loop", "uvloop", "--ws-ping-interval", "0",
        "--no-ws-per-message-deflate", "--ws-max-queue", "32")


def asgiws_spec(name: str, app: str) -> ServerSpec:
    return ServerSpec(
        name, "asgiws",
        ("asgiws", app, "--host", "127.0.0.1", "--port", "{port}", *FAST), (), (),
    )


UVICORN = ServerSpec(
    "uvicorn-loop", "uvicorn",
    ("uvicorn", "benchmarks.apps:app", "--host", "127.0.0.1", "--port", "{port}",
     "--no-access-log", "--http", "httptools", "--loop", "uvloop", "--ws", "websockets-sansio",
     "--ws-per-message-deflate", "false", "--ws-ping-interval", "0", "--log-level", "warning"),
    (), (),
)
ROWS: dict[str, tuple[ServerSpec, int]] = {  # name -> (spec, processes)
    "uvicorn-loop": (UVICORN, 1),
    "asgiws-loop": (asgiws_spec("asgiws-loop", "benchmarks.apps:app"), 1),
    "asgiws-hub": (asgiws_spec("asgiws-hub", "benchmarks.hub_app:app"), 1),
    "asgiws-hub-redis": (asgiws_spec("asgiws-hub-redis", "benchmarks.hub_app:app"), 2),
}


# ---------------------------------------------------------------- load generator


async def client_main(args: argparse.Namespace) -> dict[str, Any]:
    """Runs in its own process (CPU 1): connects, then both phases."""
    import itertools

    from picows import WSMsgType

    from benchmarks import loadgen
    from benchmarks.loadgen import BroadcastHub, Connector, Controller, Subscriber

    ports = [int(p) for p in args.ports.split(",")]
    pids = [int(p) for p in args.pids.split(",")]
    group = f"g{os.getpid()}"
    hub = BroadcastHub(args.subscribers)
    connectors = [Connector(port) for port in ports]
    spread = itertools.cycle(connectors)

    def open_one() -> Any:
        connector = next(spread)
        return connector.open(f"/broadcast?group={group}", lambda: Subscriber(hub),
                              read_buffer=1024)

    pairs = await connectors[0].open_many(args.subscribers, open_one)
    transports = [t for t, _ in pairs]
    controls = []
    for connector in connectors:
        transport, controller = await connector.open(f"/broadcast/control?group={group}",
                                                     Controller)
        assert isinstance(controller, Controller)
        transports.append(transport)
        controls.append((transport, controller))
    hub.control = controls[0][0]

    def server_cpu() -> float:
        total = 0.0
        for pid in pids:
            total += loadgen.server_cpu_seconds(pid)
        return total

    async def registered() -> int:
        total = 0
        for transport, controller in controls:
            transport.send(WSMsgType.TEXT, b"count")
            total += int(await asyncio.wait_for(controller.replies.get(), 10))
        return total

    deadline = time.monotonic() + 30
    while await registered() < args.subscribers:
        if time.monotonic() > deadline:
            raise RuntimeError("subscribers did not all register")
        await asyncio.sleep(0.1)

    result: dict[str, Any] = {}
    try:
        # -- saturate
        window = hub.window
        for _ in range(loadgen.TRIGGERS_IN_FLIGHT):
            hub.trigger()
        await asyncio.sleep(args.warmup)
        window.measuring = True
        count0, t0, cpu0 = window.count, time.monotonic(), server_cpu()
        own0 = loadgen.cpu_seconds()
        await asyncio.sleep(args.duration)
        count1, t1, cpu1 = window.count, time.monotonic(), server_cpu()
        own1 = loadgen.cpu_seconds()
        window.measuring = False
        window.running = False
        await drain(hub)
        lat = sorted(window.latencies_ns)
        result["saturate"] = {
            "deliveries_per_s": (count1 - count0) / (t1 - t0),
            "deliveries_per_cpu_s": (count1 - count0) / max(cpu1 - cpu0, 1e-9),
            "server_cpu": (cpu1 - cpu0) / (t1 - t0),
            "loadgen_cpu": (own1 - own0) / (t1 - t0),
            "p50_ms": loadgen.percentile(lat, 50) / 1e6,
            "p99_ms": loadgen.percentile(lat, 99) / 1e6,
        }
        # -- paced: one message every PACE seconds, whatever the fan-out does
        window.latencies_ns.clear()
        window.measuring = True
        count0, t0, cpu0 = window.count, time.monotonic(), server_cpu()
        own0 = loadgen.cpu_seconds()
        sent = 0
        start = time.monotonic()
        while time.monotonic() - start < args.duration:
            hub.trigger()
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * PACE - time.monotonic()))
        await drain(hub)
        count1, t1, cpu1 = window.count, time.monotonic(), server_cpu()
        own1 = loadgen.cpu_seconds()
        window.measuring = False
        lat = sorted(window.latencies_ns)
        result["paced"] = {
            "messages": sent,
            "deliveries": count1 - count0,
            "server_cpu": (cpu1 - cpu0) / (t1 - t0),
            "loadgen_cpu": (own1 - own0) / (t1 - t0),
            "p50_ms": loadgen.percentile(lat, 50) / 1e6,
            "p99_ms": loadgen.percentile(lat, 99) / 1e6,
            "max_ms": lat[-1] / 1e6 if lat else float("nan"),
        }
    finally:
        await loadgen.close_all(transports)
    return result


async def drain(hub: Any) -> None:
    deadline = time.monotonic() + 30
    while hub.pending and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    if hub.pending:
        raise RuntimeError(f"{len(hub.pending)} fan-outs never completed")


# ---------------------------------------------------------------- orchestration


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, "redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(0.3)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def run_row(name: str, subscribers: int, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    spec, processes = ROWS[name]
    redis = Redis() if processes > 1 else None
    servers: list[RunningServer] = []
    old_env = os.environ.get("HUB_URL")
    try:
        if redis is not None:
            os.environ["HUB_URL"] = f"redis://127.0.0.1:{redis.port}/0"
        for i in range(processes):
            server = RunningServer(spec, free_port(), logs / f"{name}-{subscribers}-{i}.log")
            servers.append(server)
        for server in servers:
            server.wait_ready()
        pids = [s.pid for s in servers] + ([redis.process.pid] if redis else [])
        command = [
            "taskset", "-c", LOADGEN_CPU, sys.executable, __file__, "client",
            "--ports", ",".join(str(s.port) for s in servers),
            "--pids", ",".join(str(p) for p in pids),
            "--subscribers", str(subscribers),
            "--duration", str(args.duration), "--warmup", str(args.warmup),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                              preexec_fn=raise_nofile_limit)
        if done.returncode != 0:
            return {"error": done.stderr.strip().splitlines()[-6:] or ["failed"]}
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result
    finally:
        for server in servers:
            server.stop()
        if redis is not None:
            redis.stop()
        if old_env is None:
            os.environ.pop("HUB_URL", None)
        else:
            os.environ["HUB_URL"] = old_env


def median_of(rounds: list[dict[str, Any]], phase: str, key: str) -> float | None:
    values = [r[phase][key] for r in rounds if phase in r]
    return statistics.median(values) if values else None


def report(results: dict[str, dict[int, list[dict[str, Any]]]], args: argparse.Namespace,
           out: Path) -> None:
    stamp = datetime.date.today().isoformat()
    loads = os.getloadavg()
    meta = {
        "date": stamp,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "rounds": args.rounds,
        "duration_s": args.duration,
        "load_average_at_end": loads,
    }
    (out / f"hub-{stamp}.json").write_text(json.dumps({"meta": meta, "results": results},
                                                       indent=1))
    lines = [
        f"# Hub fan-out benchmark, {stamp}",
        "",
        f"{meta['machine']}; server(s) and redis-server on CPU {SERVER_CPU}, load generator "
        f"(picows on uvloop) on CPU {LOADGEN_CPU}; {args.rounds} round(s) of {args.duration:g} s "
        "per phase, median shown.  64-byte binary messages.  **The machine is shared with "
        f"other work and noisy** (load average {loads[0]:.1f} at the end): read ratios, not "
        "absolute numbers, and expect 10-30 % swings between runs.",
        "",
        "| row | subscribers | deliveries/s | vs uvicorn-loop | deliveries / server CPU s "
        "| server CPU | load generator CPU | p50 ms (saturated) | p99 ms (saturated) "
        "| p50 ms (1 msg / 100 ms) | p99 ms (1 msg / 100 ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in args.sizes:
        base = median_of(results.get("uvicorn-loop", {}).get(size, []), "saturate",
                         "deliveries_per_s")
        for name in args.rows:
            rounds = results.get(name, {}).get(size, [])
            rate = median_of(rounds, "saturate", "deliveries_per_s")
            if rate is None:
                errors = [r.get("error") for r in rounds]
                lines.append(f"| {name} | {size:,} | failed: {errors} | | | | | | | | |")
                continue

            def cell(
                phase: str, key: str, fmt: str = "{:,.1f}", rounds: list[Any] = rounds
            ) -> str:
                value = median_of(rounds, phase, key)
                return "n/a" if value is None else fmt.format(value)

            ratio = f"{rate / base:.2f}x" if base else "n/a"
            lines.append(
                f"| {name} | {size:,} | {rate:,.0f} | {ratio} | "
                f"{cell('saturate', 'deliveries_per_cpu_s', '{:,.0f}')} | "
                f"{cell('saturate', 'server_cpu', '{:.2f}')} | "
                f"{cell('saturate', 'loadgen_cpu', '{:.2f}')} | "
                f"{cell('saturate', 'p50_ms')} | {cell('saturate', 'p99_ms')} | "
                f"{cell('paced', 'p50_ms')} | {cell('paced', 'p99_ms')} |"
            )
    (out / f"hub-{stamp}.md").write_text("\n".join(lines) + "\n")
    chart(results, args, out / f"hub-{stamp}.png")
    print("\n".join(lines))


def chart(results: dict[str, dict[int, list[dict[str, Any]]]], args: argparse.Namespace,
          path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(args.rows)
    for i, name in enumerate(args.rows):
        xs = [j + i * width for j in range(len(args.sizes))]
        rates = [median_of(results.get(name, {}).get(s, []), "saturate", "deliveries_per_s") or 0
                 for s in args.sizes]
        p99 = [median_of(results.get(name, {}).get(s, []), "paced", "p99_ms") or 0
               for s in args.sizes]
        left.bar(xs, rates, width, label=name)
        right.bar(xs, p99, width, label=name)
    for axis, title in ((left, "deliveries/s (saturated)"), (right, "p99 ms, 1 msg / 100 ms")):
        axis.set_xticks([j + 0.4 - width / 2 for j in range(len(args.sizes))])
        axis.set_xticklabels([f"{s:,} subscribers" for s in args.sizes])
        axis.set_title(title)
    right.axhline(50, color="red", linestyle="--", linewidth=1)
    left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        parser = argparse.ArgumentParser()
        parser.add_argument("client")
        parser.add_argument("--ports", required=True)
        parser.add_argument("--pids", required=True)
        parser.add_argument("--subscribers", type=int, required=True)
        parser.add_argument("--duration", type=float, default=5.0)
        parser.add_argument("--warmup", type=float, default=1.0)
        args = parser.parse_args()
        raise_nofile_limit()
        import uvloop

        print(json.dumps(uvloop.run(client_main(args))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    results: dict[str, dict[int, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory() as logs:
        for round_ in range(args.rounds):
            for size in args.sizes:
                for name in args.rows:
                    print(f"round {round_ + 1}: {name} x {size}", file=sys.stderr, flush=True)
                    row = run_row(name, size, args, Path(logs))
                    if "error" in row:  # the shared machine: one more try, and say so
                        print(f"  retrying after {row['error'][-1:]}", file=sys.stderr)
                        row = run_row(name, size, args, Path(logs))
                        row["retried"] = True
                    print(f"  {row}", file=sys.stderr, flush=True)
                    results.setdefault(name, {}).setdefault(size, []).append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    report(results, args, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
