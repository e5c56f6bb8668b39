"""Load-independent cost of a fan-out: instructions and write calls per delivery.

    .venv/bin/python benchmarks/hub_instructions.py [--rows asgiws-hub uvicorn-loop]
        [--subscribers 1000] [--messages 10] [--burst 1 4]

Each row's server (benchmarks/hub.py's rows, one process) runs under
callgrind with instrumentation off; the subscribers of benchmarks/hub_client.py
connect, and `--messages` rounds are published, each round `--burst`
messages back to back then waiting until every subscriber has them all.
Instrumentation is on only around those rounds, so the count is the
server's user-space instructions per delivery (the kernel's share is not in
it: see the write calls).  A second run without valgrind counts the
server's write calls per delivery (write, writev, send, sendmsg: perf,
`benchmarks/write_calls.py`): one per delivery unless several messages
reach a socket in one call.  Wall-clock speed plays no
part, so the numbers hold on a busy machine.  Not a test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import hub  # noqa: E402
from benchmarks.hub_client import Subscribers  # noqa: E402
from benchmarks.loadgen import Connector, Controller  # noqa: E402
from benchmarks.servers import free_port, http_ok, raise_nofile_limit  # noqa: E402
from benchmarks.write_calls import WriteCalls  # noqa: E402

STARTUP_TIMEOUT = 180.0  # a server under valgrind starts slowly


def callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=60)


async def publish_rounds(
    port: int, subscribers: int, rounds: int, burst: int, pid: int, valgrind: bool
) -> int | None:
    """Connects, warms up, measures; returns the server's write calls in the
    rounds (None under valgrind, or where perf cannot count them)."""
    members = Subscribers(subscribers, 10, 1)
    control = None
    try:
        await members.open([port], "g")
        control, controller = await Connector(port).open("/broadcast/control?group=g", Controller)
        await hub.registered([(control, controller)], subscribers)
        publisher = hub.Publisher(control, members)

        async def one_round() -> None:
            for _ in range(burst):
                publisher.publish()
            await publisher.drain()

        for _ in range(3):  # warm-up: imports, caches, first-use paths
            await one_round()
        writes = WriteCalls([pid])
        if valgrind:
            callgrind_control("--instr=on", str(pid))
        else:
            writes.start()
        for _ in range(rounds):
            await one_round()
        if valgrind:
            callgrind_control("--instr=off", str(pid))
        counted = writes.stop()  # None if never started
        members.check(publisher.sent)
        return counted
    finally:
        await members.close()
        if control is not None:
            control.disconnect()


def measure(row: str, args: argparse.Namespace, burst: int, valgrind: bool) -> float:
    """Instructions per delivery (valgrind) or write calls per delivery."""
    spec, _ = hub.ROWS[row]
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        tool = (
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
            if valgrind
            else []
        )
        server = subprocess.Popen(
            [*tool, sys.executable, "-m", *(a.format(port=port) for a in spec.args)],
            cwd=spec.root,
            env=dict(os.environ, PYTHONPATH=str(spec.root)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=raise_nofile_limit,
        )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not http_ok(port):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{row} did not start")
                time.sleep(0.5)
            import uvloop

            writes: int | None = uvloop.run(
                publish_rounds(port, args.subscribers, args.messages, burst, server.pid, valgrind)
            )
            if valgrind:
                callgrind_control("--dump", str(server.pid))
        finally:
            server.terminate()
            server.wait(60)
        deliveries: int = args.messages * burst * args.subscribers
        if not valgrind:
            return float("nan") if writes is None else writes / deliveries
        total = 0
        for dump in Path(tmp).glob("callgrind.out*"):
            for line in dump.read_text().splitlines():
                if line.startswith(("summary:", "totals:")):
                    total = max(total, int(line.split()[1]))
        return total / deliveries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", default=["asgiws-hub"], choices=list(hub.ROWS))
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=10, help="measured rounds")
    parser.add_argument("--burst", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    raise_nofile_limit()
    print("| row | messages per round | instructions / delivery | write calls / delivery |")
    print("|---|---|---|---|")
    for row in args.rows:
        if hub.ROWS[row][1] != 1:
            print(f"| {row} | (skipped: more than one server process) | | |")
            continue
        for burst in args.burst:
            instructions = measure(row, args, burst, valgrind=True)
            writes = measure(row, args, burst, valgrind=False)
            print(f"| {row} | {burst} | {instructions:,.0f} | {writes:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
