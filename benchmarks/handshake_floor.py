"""How much of a WebSocket handshake's cost is the server's own: asgiws
against granian and against a floor, the least an ASGI server in Python on
uvloop can do per handshake.

    python benchmarks/handshake_floor.py [--rounds 3] [--duration 5] [--out FILE]
    python -m benchmarks.handshake_floor serve --port PORT   (the floor alone)

The floor is a measuring reference, not a server: one `asyncio.Protocol` on
uvloop that finds the `Sec-WebSocket-Key` in the first read, builds a scope
dict, runs the benchmarks' ASGI app (`benchmarks.apps:app`) in a task of
its own with `receive`/`send` coroutines, answers `websocket.accept` with a
fixed 101 head and the client's close frame with a close frame, and closes.
It checks nothing (no HTTP grammar, no handshake validation, no frame
parser, no timers, no limits), so it is what any Python ASGI server pays
at least: the transport, the task, the app's coroutines and the system
calls.  Plain `GET` gets `200 ok` so that readiness probes work.

Each round runs the servers one after the other on the same load
(`loadgen.py ws_handshake`, server on CPU 0, load generator on CPU 1, as
run.py does; in reversed order in even rounds) and the table gives
medians: handshakes/s, the server's CPU per handshake split into user and
system time (`/proc/PID/stat`), and the load generator's CPU share (near
1.00: the client, not the server, is the limit).

    python benchmarks/handshake_floor.py --rate 1000 --servers asgiws-fast uvicorn-fast

With `--rate` the load is paced at that many handshakes per second, as in
run.py's cost pass, and the table also gives how often the server went to
sleep per handshake (its voluntary context switches): at low rates part of
a handshake's cost is what a server pays when it wakes, and that part
the flat-out rate does not show.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

# Run as a script, sys.path[0] is benchmarks/: the repository root goes first.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.run import Settings, run_loadgen
from benchmarks.servers import (
    RunningServer,
    ServerSpec,
    free_port,
    spec_named,
    tree_pids,
    tree_status_sum,
)

FLOOR = ServerSpec(
    "python-floor", "uvloop", ("benchmarks.handshake_floor", "serve", "--port", "{port}"), None, ()
)
COMPARED = ("asgiws-fast", "granian")

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_KEY_FIELD = b"\r\nsec-websocket-key:"
_CLOSE_1000 = b"\x88\x02\x03\xe8"
_CONNECT = {"type": "websocket.connect"}
_DISCONNECT = {"type": "websocket.disconnect", "code": 1000, "reason": ""}
_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

Message = dict[str, Any]


class FloorProtocol(asyncio.Protocol):
    """One connection of the floor (see the module docstring)."""

    def __init__(self, app: Callable[..., Coroutine[Any, Any, None]]) -> None:
        self.app = app
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.key = b""
        self.inbox: list[Message] = []
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        if self.task is None:
            head = data.partition(b"\r\n\r\n")[0]
            start = head.lower().find(_KEY_FIELD)
            if start < 0:
                transport.write(_OK)
                return
            self.key = head[start + len(_KEY_FIELD) :].split(b"\r\n", 1)[0].strip()
            lines = head.split(b"\r\n")
            target = lines[0].split(b" ")[1]
            headers = [
                (name.lower(), value.strip())
                for name, _, value in (line.partition(b":") for line in lines[1:])
            ]
            scope = {
                "type": "websocket",
                "asgi": {"version": "3.0", "spec_version": "2.4"},
                "http_version": "1.1",
                "scheme": "ws",
                "path": target.decode(),
                "raw_path": target,
                "query_string": b"",
                "root_path": "",
                "headers": headers,
                "client": transport.get_extra_info("peername"),
                "server": transport.get_extra_info("sockname"),
                "subprotocols": [],
                "state": {},
                "extensions": {},
            }
            self.inbox.append(_CONNECT)
            self.task = self.loop.create_task(self.app(scope, self.receive, self.send))
        elif data[:1] == b"\x88":
            transport.write(_CLOSE_1000)
            transport.close()
            self._put(_DISCONNECT)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self._put(_DISCONNECT)

    def _put(self, message: Message) -> None:
        self.inbox.append(message)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> Message:
        while not self.inbox:
            self.waiter = self.loop.create_future()
            await self.waiter
        return self.inbox.pop(0)

    async def send(self, message: Message) -> None:
        transport = self.transport
        if message["type"] == "websocket.accept" and transport is not None:
            accept = base64.b64encode(hashlib.sha1(self.key + _GUID).digest())
            transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )


async def serve(port: int) -> None:
    from benchmarks.apps import app

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FloorProtocol(app), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def user_system_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process tree (`/proc/PID/stat`)."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    for member in tree_pids(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        user += int(fields[11]) / tick
        system += int(fields[12]) / tick
    return user, system


def sleeps(pid: int) -> int:
    """Times the process tree went to sleep: its voluntary context switches."""
    return tree_status_sum(pid, "voluntary_ctxt_switches")


def one_run(
    spec: ServerSpec, settings: Settings, logs: Path, rate: float | None = None
) -> dict[str, float]:
    """One measurement on a fresh server: flat out, or paced at `rate`/s.

    The user/system split and the sleeps are counted over the whole load
    generator run (warm-up included) and scaled to the measured window's
    handshakes: the split as a share of the measured CPU time, the sleeps
    per handshake offered over the run's paced seconds."""
    with RunningServer(spec, free_port(), logs / f"{spec.name}.log") as server:
        server.wait_ready()
        user0, system0 = user_system_seconds(server.pid)
        sleeps0 = sleeps(server.pid)
        result = run_loadgen("ws_handshake", server, settings, None if rate is None else [rate])
        user1, system1 = user_system_seconds(server.pid)
        sleeps1 = sleeps(server.pid)
    if rate is None:
        if result.get("value") is None:
            raise RuntimeError(f"{spec.name}: {result.get('error')}")
        achieved = float(result["value"])
        server_us = float(result["server_cpu"]) / achieved * 1e6
        loadgen_cpu = float(result["loadgen_cpu"])
        seconds = settings.warmup + settings.duration
    else:
        if not result.get("levels"):
            raise RuntimeError(f"{spec.name}: {result.get('error')}")
        level = result["levels"][0]
        if level["saturated"] or level["server_us_per_unit"] is None:
            raise RuntimeError(f"{spec.name}: saturated at {rate:.0f} handshakes/s")
        achieved = float(level["achieved"])
        server_us = float(level["server_us_per_unit"])
        loadgen_cpu = float(level["loadgen_cpu"])
        seconds = settings.cost_first_warmup + settings.cost_duration
    user, system = user1 - user0, system1 - system0
    user_share = user / (user + system) if user + system else 0.0
    return {
        "rate": achieved,
        "server_us": server_us,
        "user_us": server_us * user_share,
        "system_us": server_us * (1 - user_share),
        "sleeps": (sleeps1 - sleeps0) / (achieved * seconds),
        "loadgen_cpu": loadgen_cpu,
    }


def compare(
    rounds: int, duration: float, names: list[str] | None = None, rate: float | None = None
) -> str:
    names = names or [*COMPARED, FLOOR.name]
    specs = [FLOOR if name == FLOOR.name else spec_named(name) for name in names]
    settings = Settings(
        duration=duration,
        warmup=1.0,
        wrk_seconds=0,
        quick=False,
        cost_duration=duration,
        cost_first_warmup=3.0,
    )
    runs: dict[str, list[dict[str, float]]] = {spec.name: [] for spec in specs}
    with tempfile.TemporaryDirectory() as logs:
        for number in range(rounds):
            for spec in specs if number % 2 == 0 else specs[::-1]:
                run = one_run(spec, settings, Path(logs), rate)
                runs[spec.name].append(run)
                print(f"round {number + 1} {spec.name}: {run}", file=sys.stderr)
    paced = rate is not None
    lines = [
        "| server | handshakes/s | server µs / handshake | user µs | system µs "
        + ("| sleeps / handshake " if paced else "")
        + "| load generator CPU |",
        "|---|---:|---:|---:|---:|---:|" + ("---:|" if paced else ""),
    ]
    for name, results in runs.items():

        def median(key: str, results: list[dict[str, float]] = results) -> float:
            return statistics.median(run[key] for run in results)

        lines.append(
            f"| {name} | {median('rate'):,.0f} | {median('server_us'):.1f} | "
            f"{median('user_us'):.1f} | {median('system_us'):.1f} | "
            + (f"{median('sleeps'):.2f} | " if paced else "")
            + f"{median('loadgen_cpu'):.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="asgiws, granian and a Python floor on ws_handshake"
    )
    commands = parser.add_subparsers(dest="command")
    serve_command = commands.add_parser("serve", help="run the floor server alone")
    serve_command.add_argument("--port", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per run")
    parser.add_argument(
        "--servers",
        nargs="+",
        metavar="SERVER",
        help=f"benchmarks/servers.py names, or python-floor (default: {' '.join(COMPARED)} "
        "and python-floor)",
    )
    parser.add_argument(
        "--rate", type=float, help="pace the load at this many handshakes/s (the cost pass)"
    )
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    if args.command == "serve":
        import uvloop

        uvloop.run(serve(args.port))
        return 0
    table = compare(args.rounds, args.duration, args.servers, args.rate)
    print(table)
    if args.out is not None:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
