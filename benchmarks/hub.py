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
- uvicorn-starlette-loop, asgiws-starlette-hub: the same two fan-outs
  written as Starlette apps (benchmarks/hub_starlette.py: `await
  websocket.send_bytes(...)` in a loop under uvicorn, `hub.join(group,
  websocket)` and `hub.publish()` under asgiws); their "vs" column is taken
  against the Starlette loop, every other row's against uvicorn-loop.

For each row and subscriber count, three phases on the same connections,
64-byte binary messages carrying a sequence number and their send time:
- saturate: 4 fan-outs in flight, a new one as soon as one completes:
  deliveries/s, server CPU µs per delivery (server processes plus
  redis-server), p50/p99 delivery latency under full load;
- rate: a fixed rate below every row's saturation (--rate deliveries/s,
  50,000 by default): server CPU µs per delivery, a ratio that does not
  depend on how fast the load generator is;
- paced: one message every 100 ms: p50/p99 delivery latency (the target:
  p99 under 50 ms at 10,000 subscribers), and server CPU µs per delivery.

The subscribers (benchmarks/hub_client.py) check and count frames by bytes;
--sampled of them (200) parse every frame for its send time and sequence
number.  A malformed or missing frame fails the run.  That per-read work
runs in C (benchmarks/hub_counter.c, compiled at start into a temporary
directory); without a C compiler, or with --python-subscribers, the Python
classes of hub_client.py do it, slower.  `subscriber_impl` in the results
and the report's header say which ran.
The load generator's CPU share is reported beside every phase: a row
whose load generator is near 1.00 measured the client, not the server.

The paced table ends each size with the machine's floor, `send-floor`
(benchmarks/send_floor.c, built at start; --no-floor leaves it out): one
core doing nothing but one send() of a 66-byte record per subscriber every
100 ms, read with epoll on the other core.  A server can only add to its
cost and latency, so a target that row misses no server meets on the machine.

Writes benchmarks/results/hub-YYYY-MM-DD.{json,md,png}.  Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
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

from picows import WSMsgType  # noqa: E402

from benchmarks import loadgen, send_floor  # noqa: E402
from benchmarks.hub_client import (  # noqa: E402
    PYTHON,
    BenchmarkError,
    Subscribers,
    build_counter,
    load_counter,
    trigger_payload,
)
from benchmarks.loadgen import Connector, Controller  # noqa: E402
from benchmarks.servers import (  # noqa: E402
    APP,
    BASELINE,
    SERVER_CPU,
    RunningServer,
    ServerSpec,
    free_port,
    raise_nofile_limit,
    spec_named,
    tree_pids,
)
from benchmarks.write_calls import WriteCalls  # noqa: E402

LOADGEN_CPU = "1"
PACE = 0.1  # seconds between messages in the paced phase
RATE = 50_000.0  # deliveries/s of the fixed-rate phase: below every row's saturation
SAMPLED = 200  # subscribers that parse every frame (latency, order)
FAST = (
    "--no-access-log",
    "--http",
    "httptools",
    "--loop",
    "uvloop",
    "--ws-ping-interval",
    "0",
    "--no-ws-per-message-deflate",
    "--ws-max-queue",
    "32",
)


def asgiws_spec(name: str, app: str) -> ServerSpec:
    return ServerSpec(
        name,
        "asgiws",
        ("asgiws", app, "--host", "127.0.0.1", "--port", "{port}", *FAST),
        (),
        (),
    )


# The benchmark suite's uvicorn-fast (benchmarks/servers.py), without
# permessage-deflate and keepalive pings, as the asgiws rows run.
_UVICORN_FAST = spec_named(BASELINE)
UVICORN = dataclasses.replace(
    _UVICORN_FAST,
    name="uvicorn-loop",
    args=(*_UVICORN_FAST.args, "--ws-ping-interval", "0"),
    deflate_on=_UVICORN_FAST.deflate_off,
)
UVICORN_STARLETTE = dataclasses.replace(
    UVICORN,
    name="uvicorn-starlette-loop",
    args=tuple("benchmarks.hub_starlette:loop_app" if a == APP else a for a in UVICORN.args),
)
ROWS: dict[str, tuple[ServerSpec, int]] = {  # name -> (spec, processes)
    "uvicorn-loop": (UVICORN, 1),
    "asgiws-loop": (asgiws_spec("asgiws-loop", "benchmarks.apps:app"), 1),
    "asgiws-hub": (asgiws_spec("asgiws-hub", "benchmarks.hub_app:app"), 1),
    "asgiws-hub-redis": (asgiws_spec("asgiws-hub-redis", "benchmarks.hub_app:app"), 2),
    "uvicorn-starlette-loop": (UVICORN_STARLETTE, 1),
    "asgiws-starlette-hub": (
        asgiws_spec("asgiws-starlette-hub", "benchmarks.hub_starlette:hub_app"),
        1,
    ),
}
FLOOR_ROW = "send-floor"  # benchmarks/send_floor.c: the machine, no server
# The uvicorn loop a row's ratio is taken against: the Starlette rows against
# the Starlette loop, the raw ASGI rows against the raw ASGI loop.
BASE_ROW = {name: "uvicorn-loop" for name in ROWS} | {
    "uvicorn-starlette-loop": "uvicorn-starlette-loop",
    "asgiws-starlette-hub": "uvicorn-starlette-loop",
}


# ---------------------------------------------------------------- load generator


class Publisher:
    """Publishes through the control connection; keeps `in_flight` fan-outs
    going while it is above 0 (each completion publishes the next one)."""

    def __init__(self, control: Any, subscribers: Subscribers) -> None:
        self.control = control
        self.tally = subscribers.tally
        self.sent = 0
        self.in_flight = 0
        self.tally.on_complete = self.completed

    def publish(self) -> None:
        self.control.send(WSMsgType.BINARY, trigger_payload(self.sent))
        self.sent += 1

    def completed(self) -> None:
        if self.sent - self.tally.complete < self.in_flight:
            self.publish()

    async def drain(self) -> None:
        """Until every fan-out published so far is complete (bounded)."""
        self.in_flight = 0
        deadline = time.monotonic() + 30
        while self.tally.complete < self.sent and self.tally.error is None:
            if time.monotonic() > deadline:
                raise BenchmarkError(f"{self.sent - self.tally.complete} fan-outs never completed")
            await asyncio.sleep(0.01)
        if self.tally.error is not None:
            raise BenchmarkError(self.tally.error)


class Meter:
    """Deliveries, server CPU (every server process and redis-server) and the
    load generator's own CPU over one phase."""

    def __init__(self, pids: list[int], subscribers: Subscribers) -> None:
        self.pids = pids
        self.subscribers = subscribers

    def server_cpu(self) -> float:
        return sum(loadgen.server_cpu_seconds(pid) for pid in self.pids)

    @staticmethod
    def own_reads() -> int:
        """read system calls of the load generator so far (each a socket read)."""
        fields = Path("/proc/self/io").read_text().split()
        return int(fields[fields.index("syscr:") + 1])

    def start(self) -> None:
        self.subscribers.latencies.clear()
        self.subscribers.measure_latency(True)
        self.count0 = self.subscribers.tally.total
        # write/writev/send/sendmsg calls of the server trees (perf): fewer than
        # one per delivery means several messages went to a socket in one call.
        self.writes = WriteCalls([pid for root in self.pids for pid in tree_pids(root)])
        self.writes.start()
        self.reads0 = self.own_reads()
        self.time0, self.cpu0, self.own0 = (
            time.monotonic(),
            self.server_cpu(),
            loadgen.cpu_seconds(),
        )

    def stop(self) -> dict[str, float | None]:
        deliveries = self.subscribers.tally.total - self.count0
        seconds = time.monotonic() - self.time0
        cpu = self.server_cpu() - self.cpu0
        own = loadgen.cpu_seconds() - self.own0
        writes = self.writes.stop()
        reads = self.own_reads() - self.reads0
        self.subscribers.measure_latency(False)
        lat = sorted(self.subscribers.latencies)
        return {
            "deliveries": deliveries,
            "deliveries_per_s": deliveries / seconds,
            "server_cpu": cpu / seconds,
            "server_us_per_delivery": cpu * 1e6 / max(deliveries, 1),
            "deliveries_per_cpu_s": deliveries / max(cpu, 1e-9),
            "server_writes_per_delivery": None if writes is None else writes / max(deliveries, 1),
            "loadgen_cpu": own / seconds,
            "loadgen_reads_per_delivery": reads / max(deliveries, 1),
            "latency_samples": len(lat),
            "p50_ms": loadgen.percentile(lat, 50) / 1e6,
            "p99_ms": loadgen.percentile(lat, 99) / 1e6,
            "max_ms": lat[-1] / 1e6 if lat else float("nan"),
        }


async def saturate(publisher: Publisher, meter: Meter, args: argparse.Namespace) -> dict[str, Any]:
    """TRIGGERS_IN_FLIGHT fan-outs in flight, a new one as each completes."""
    publisher.in_flight = loadgen.TRIGGERS_IN_FLIGHT
    for _ in range(publisher.in_flight):
        publisher.publish()
    await asyncio.sleep(args.warmup)
    meter.start()
    await asyncio.sleep(args.duration)
    result = meter.stop()
    await publisher.drain()
    return result


async def fixed_rate(
    publisher: Publisher, meter: Meter, messages_per_s: float, duration: float
) -> dict[str, Any]:
    """One message every 1/messages_per_s seconds whatever the fan-outs do,
    then until the last one is complete (counted in)."""
    interval = 1.0 / messages_per_s
    meter.start()
    start = time.monotonic()
    sent = backlog = 0
    while time.monotonic() - start < duration:
        backlog = max(backlog, publisher.sent - publisher.tally.complete)
        publisher.publish()
        sent += 1
        await asyncio.sleep(max(0.0, start + sent * interval - time.monotonic()))
    await publisher.drain()
    return {
        **meter.stop(),
        "messages": sent,
        "messages_per_s": messages_per_s,
        # fan-outs still incomplete when the next was published: 0 means the
        # server (and the load generator) kept up with the rate
        "max_backlog": backlog,
    }


async def client_main(args: argparse.Namespace) -> dict[str, Any]:
    """Runs in its own process (CPU 1): connects, then the three phases."""
    ports = [int(p) for p in args.ports.split(",")]
    pids = [int(p) for p in args.pids.split(",")]
    group = f"g{os.getpid()}"
    implementation = load_counter(Path(args.counter)) if args.counter else PYTHON
    subscribers = Subscribers(args.subscribers, args.sampled, len(ports), implementation)
    controls: list[tuple[Any, Controller]] = []
    try:
        await subscribers.open(ports, group)
        for port in ports:
            transport, controller = await Connector(port).open(
                f"/broadcast/control?group={group}", Controller
            )
            assert isinstance(controller, Controller)
            controls.append((transport, controller))
        await registered(controls, args.subscribers)
        publisher = Publisher(controls[0][0], subscribers)
        meter = Meter(pids, subscribers)
        result: dict[str, Any] = {
            "sampled": len(subscribers.sampled_indexes),
            "subscriber_impl": implementation.name,
        }
        result["saturate"] = await saturate(publisher, meter, args)
        result["rate"] = await fixed_rate(
            publisher, meter, args.rate / args.subscribers, args.duration
        )
        result["paced"] = await fixed_rate(publisher, meter, 1 / PACE, args.duration)
        subscribers.check(publisher.sent)
    finally:
        await subscribers.close()
        await loadgen.close_all([transport for transport, _ in controls])
    return result


async def registered(controls: list[tuple[Any, Any]], expected: int) -> None:
    """Until the servers count every subscriber as a member (bounded)."""
    deadline = time.monotonic() + 30
    while True:
        total = 0
        for transport, controller in controls:
            transport.send(WSMsgType.TEXT, b"count")
            total += int(await asyncio.wait_for(controller.replies.get(), 10))
        if total >= expected:
            return
        if time.monotonic() > deadline:
            raise BenchmarkError(f"only {total}/{expected} subscribers registered")
        await asyncio.sleep(0.1)


# ---------------------------------------------------------------- orchestration


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                "taskset",
                "-c",
                SERVER_CPU,
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.3)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def run_row(
    name: str, subscribers: int, args: argparse.Namespace, logs: Path, counter: Path | None
) -> dict[str, Any]:
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
        try:
            for server in servers:
                server.wait_ready()
        except RuntimeError as exc:  # a server that does not start: this row failed
            return {"error": str(exc).splitlines()[-6:]}
        pids = [s.pid for s in servers] + ([redis.process.pid] if redis else [])
        command = [
            "taskset",
            "-c",
            LOADGEN_CPU,
            sys.executable,
            __file__,
            "client",
            "--ports",
            ",".join(str(s.port) for s in servers),
            "--pids",
            ",".join(str(p) for p in pids),
            "--subscribers",
            str(subscribers),
            "--duration",
            str(args.duration),
            "--warmup",
            str(args.warmup),
            "--rate",
            str(args.rate),
            "--sampled",
            str(args.sampled),
            "--counter",
            str(counter or ""),
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=600, preexec_fn=raise_nofile_limit
        )
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
    values = [r[phase][key] for r in rounds if phase in r and r[phase].get(key) is not None]
    return statistics.median(values) if values else None


def cell(rounds: list[dict[str, Any]], phase: str, key: str, fmt: str = "{:,.1f}") -> str:
    value = median_of(rounds, phase, key)
    return "n/a" if value is None else fmt.format(value)


def report(
    results: dict[str, dict[int, list[dict[str, Any]]]], args: argparse.Namespace, out: Path
) -> None:
    stamp = datetime.date.today().isoformat()
    loads = os.getloadavg()
    impls = sorted(
        {
            r.get("subscriber_impl", "?")
            for name, sizes in results.items()
            if name != FLOOR_ROW  # its subscribers are send_floor.c's own
            for rs in sizes.values()
            for r in rs
            if "error" not in r
        }
    )
    meta = {
        "date": stamp,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "rounds": args.rounds,
        "duration_s": args.duration,
        "load_average_at_end": loads,
        "subscriber_impl": impls,
    }
    counting = {
        "c": "in C (benchmarks/hub_counter.c)",
        "python": "in Python (benchmarks/hub_client.py, without the C build)",
    }
    (out / f"hub-{stamp}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    lines = [
        f"# Hub fan-out benchmark, {stamp}",
        "",
        f"{meta['machine']}; server(s) and redis-server on CPU {SERVER_CPU}, load generator "
        f"(uvloop, subscribers counting frames by bytes "
        f"{' and '.join(counting.get(i, i) for i in impls) or 'n/a'}, "
        f"{args.sampled} sampled for latency) "
        f"on CPU {LOADGEN_CPU}; {args.rounds} round(s) of {args.duration:g} s per phase, median "
        "shown.  64-byte binary messages.  Load average at the end: "
        f"{loads[0]:.1f} (the machine may be shared: read ratios, not absolute numbers).",
        "",
        "**Saturated** (4 fan-outs in flight).  A row is the server's limit only where its "
        "server CPU is near 1.00 and the load generator's is not:",
        "",
        "| row | subscribers | deliveries/s | vs its uvicorn loop | server CPU "
        "| load generator CPU | server µs / delivery | server writes / delivery "
        "| load generator reads / delivery | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in args.sizes:
        for name in args.rows:
            base = median_of(
                results.get(BASE_ROW[name], {}).get(size, []), "saturate", "deliveries_per_s"
            )
            rounds = results.get(name, {}).get(size, [])
            rate = median_of(rounds, "saturate", "deliveries_per_s")
            if rate is None:
                errors = [r.get("error") for r in rounds]
                lines.append(f"| {name} | {size:,} | failed: {errors} | | | | | | | | |")
                continue
            ratio = f"{rate / base:.2f}x" if base else "n/a"
            lines.append(
                f"| {name} | {size:,} | {rate:,.0f} | {ratio} | "
                f"{cell(rounds, 'saturate', 'server_cpu', '{:.2f}')} | "
                f"{cell(rounds, 'saturate', 'loadgen_cpu', '{:.2f}')} | "
                f"{cell(rounds, 'saturate', 'server_us_per_delivery', '{:.2f}')} | "
                f"{cell(rounds, 'saturate', 'server_writes_per_delivery', '{:.2f}')} | "
                f"{cell(rounds, 'saturate', 'loadgen_reads_per_delivery', '{:.2f}')} | "
                f"{cell(rounds, 'saturate', 'p50_ms')} | {cell(rounds, 'saturate', 'p99_ms')} |"
            )
    lines += [
        "",
        f"**Fixed rates, below saturation**: {args.rate:,.0f} deliveries/s (server CPU µs per "
        "delivery, whatever the load generator can take), and one message every "
        f"{PACE * 1000:g} ms (latency; the target is p99 under 50 ms at 10,000 subscribers).  "
        "Backlog: fan-outs still incomplete when the next was published (0: kept up):",
        "",
        f"| row | subscribers | server µs / delivery @ {args.rate / 1000:g}k/s "
        "| vs its uvicorn loop | load generator CPU | backlog "
        f"| server µs / delivery @ 1 msg / {PACE * 1000:g} ms | load generator CPU "
        "| p50 ms | p99 ms | max ms | backlog |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in args.sizes:
        for name in args.rows:
            base = median_of(
                results.get(BASE_ROW[name], {}).get(size, []), "rate", "server_us_per_delivery"
            )
            rounds = results.get(name, {}).get(size, [])
            cost = median_of(rounds, "rate", "server_us_per_delivery")
            if cost is None:
                continue
            ratio = f"{base / cost:.2f}x" if base else "n/a"
            lines.append(
                f"| {name} | {size:,} | {cost:.2f} | {ratio} | "
                f"{cell(rounds, 'rate', 'loadgen_cpu', '{:.2f}')} | "
                f"{cell(rounds, 'rate', 'max_backlog', '{:.0f}')} | "
                f"{cell(rounds, 'paced', 'server_us_per_delivery', '{:.2f}')} | "
                f"{cell(rounds, 'paced', 'loadgen_cpu', '{:.2f}')} | "
                f"{cell(rounds, 'paced', 'p50_ms')} | {cell(rounds, 'paced', 'p99_ms')} | "
                f"{cell(rounds, 'paced', 'max_ms')} | "
                f"{cell(rounds, 'paced', 'max_backlog', '{:.0f}')} |"
            )
        floor = results.get(FLOOR_ROW, {}).get(size, [])
        if floor:
            cells = [
                f"{FLOOR_ROW} (C, one send() per subscriber, no server)",
                f"{size:,}",
                *[""] * 4,  # no fixed-rate phase
                cell(floor, "paced", "server_us_per_delivery", "{:.2f}"),
                "",  # the receiver is C on epoll, not the load generator
                cell(floor, "paced", "p50_ms"),
                cell(floor, "paced", "p99_ms"),
                cell(floor, "paced", "max_ms"),
                "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    if FLOOR_ROW in results:
        lines += [
            "",
            f"`{FLOOR_ROW}`: benchmarks/send_floor.c on the same CPUs, a 66-byte record sent to "
            f"each subscriber every {PACE * 1000:g} ms and read with epoll.  A server only adds "
            "to its cost and latency: a target that row misses, no server meets on this machine.",
        ]
    (out / f"hub-{stamp}.md").write_text("\n".join(lines) + "\n")
    chart(results, args, out / f"hub-{stamp}.png")
    print("\n".join(lines))


def chart(
    results: dict[str, dict[int, list[dict[str, Any]]]], args: argparse.Namespace, path: Path
) -> None:
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
        rates = [
            median_of(results.get(name, {}).get(s, []), "saturate", "deliveries_per_s") or 0
            for s in args.sizes
        ]
        p99 = [
            median_of(results.get(name, {}).get(s, []), "paced", "p99_ms") or 0 for s in args.sizes
        ]
        left.bar(xs, rates, width, label=name)
        right.bar(xs, p99, width, label=name)
    for axis, title in ((left, "deliveries/s (saturated)"), (right, "p99 ms, 1 msg / 100 ms")):
        axis.set_xticks([j + 0.4 - width / 2 for j in range(len(args.sizes))])
        axis.set_xticklabels([f"{s:,} subscribers" for s in args.sizes])
        axis.set_title(title)
    right.set_yscale("log")  # 10 ms and seconds in one chart
    right.axhline(50, color="red", linestyle="--", linewidth=1)
    floor = [
        median_of(results.get(FLOOR_ROW, {}).get(s, []), "paced", "p99_ms") for s in args.sizes
    ]
    if any(p is not None for p in floor):  # the machine's floor, over each size's bars
        right.hlines(
            [p for p in floor if p is not None],
            [j - width / 2 for j, p in enumerate(floor) if p is not None],
            [j + 0.8 - width / 2 for j, p in enumerate(floor) if p is not None],
            colors="black",
            linewidth=2,
            label=f"{FLOOR_ROW} (no server)",
        )
        right.legend(fontsize=8)
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
        parser.add_argument("--rate", type=float, default=RATE)
        parser.add_argument("--sampled", type=int, default=SAMPLED)
        parser.add_argument("--counter", default="", help="hub_counter build; none: Python")
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
    parser.add_argument(
        "--rate",
        type=float,
        default=RATE,
        help="deliveries/s of the fixed-rate phase (server CPU per delivery)",
    )
    parser.add_argument(
        "--sampled",
        type=int,
        default=SAMPLED,
        help="subscribers that parse every frame for latency",
    )
    parser.add_argument(
        "--python-subscribers",
        action="store_true",
        help="count frames with the Python subscriber classes, not the C build",
    )
    parser.add_argument(
        "--no-floor",
        action="store_true",
        help=f"leave out the {FLOOR_ROW} row (benchmarks/send_floor.c: the machine's floor)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    results: dict[str, dict[int, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory() as logs:
        counter = None if args.python_subscribers else build_counter(Path(logs))
        how = "C (benchmarks/hub_counter.c)" if counter else "Python (benchmarks/hub_client.py)"
        print(f"subscribers: frames checked and counted in {how}", file=sys.stderr, flush=True)
        floor = None if args.no_floor else send_floor.build(Path(logs))
        for round_ in range(args.rounds):
            for size in args.sizes:
                for name in args.rows:
                    print(f"round {round_ + 1}: {name} x {size}", file=sys.stderr, flush=True)
                    row = run_row(name, size, args, Path(logs), counter)
                    if "error" in row:  # the shared machine: one more try, and say so
                        print(f"  retrying after {row['error'][-1:]}", file=sys.stderr)
                        row = run_row(name, size, args, Path(logs), counter)
                        row["retried"] = True
                    print(f"  {row}", file=sys.stderr, flush=True)
                    results.setdefault(name, {}).setdefault(size, []).append(row)
                if floor is not None:
                    print(f"round {round_ + 1}: {FLOOR_ROW} x {size}", file=sys.stderr, flush=True)
                    row = send_floor.run(
                        floor,
                        size,
                        args.duration,
                        args.warmup,
                        round(PACE * 1000),
                        SERVER_CPU,
                        LOADGEN_CPU,
                    )
                    print(f"  {row}", file=sys.stderr, flush=True)
                    results.setdefault(FLOOR_ROW, {}).setdefault(size, []).append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    report(results, args, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
