"""Instructions per HTTP request or per WebSocket handshake of one server, under callgrind.

    python scripts/profile_callgrind.py asgiws-fast http -n 3000
    python scripts/profile_callgrind.py uvicorn-fast ws -n 1000
    python scripts/profile_callgrind.py asgiws-pure ws_echo --root /tmp/old-worktree

Instruction counts do not depend on what else the machine runs, so two
versions (or two servers) compare on a shared machine where wall-clock
benchmarks cannot.  The server (a `benchmarks/servers.py` configuration, the
benchmarks' app) runs under `valgrind --tool=callgrind`; a client in this
process warms it up, the counters are zeroed (`callgrind_control -z`), a fixed
number of units runs, and the counters are dumped (`callgrind_control -d`):
user-space instructions of the server's process per unit, the kernel not
included.  `callgrind_annotate --inclusive=yes DUMP` shows where they go in C
(libpython, uvloop, llhttp); for the Python functions, profile the same
client with cProfile and read the call counts per unit.

Units (the workloads of `benchmarks/loadgen.py`):
- http: `GET /` on `--connections` keep-alive connections, one request in
  flight on each (wrk's http_hello, smaller);
- ws: a connection per unit: the opening handshake, the client's close
  frame, the server's close frame, TCP close (loadgen's ws_handshake);
- ws_echo: the same with one echoed text message before the close.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.servers import spec_named  # noqa: E402

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
CLOSE_FRAME = b"\x88\x82\x00\x00\x00\x00\x03\xe8"  # masked (zero mask), code 1000
ECHO_FRAME = b"\x81\x85\x00\x00\x00\x00hello"  # masked text "hello"
# Handshakes come from many source addresses so ephemeral ports last.
SOURCES = tuple(f"127.0.0.{host}" for host in range(2, 66))
STARTUP_TIMEOUT = 180.0  # Python under callgrind starts ~50x slower


async def http_units(port: int, count: int, connections: int) -> None:
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    left = count

    async def one() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while left > 0:
            left -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            if length is None:
                raise RuntimeError(f"no Content-Length in {head!r}")
            await reader.readexactly(int(length.group(1)))
        writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))


async def ws_units(port: int, count: int, connections: int, echo: bool) -> None:
    request = (
        f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    sources = itertools.cycle(SOURCES)
    left = count

    async def one() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(next(sources), 0)
            )
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(f"no 101: {head!r}")
            if echo:
                writer.write(ECHO_FRAME)
                if await reader.readexactly(7) != b"\x81\x05hello":
                    raise RuntimeError("wrong echo")
            writer.write(CLOSE_FRAME)
            if (await reader.readexactly(4))[:1] != b"\x88":
                raise RuntimeError("no close frame")
            writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))


def run_units(kind: str, port: int, count: int, connections: int) -> None:
    if kind == "http":
        asyncio.run(http_units(port, count, connections))
    else:
        asyncio.run(ws_units(port, count, connections, echo=kind == "ws_echo"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start") from None
            time.sleep(0.5)


def callgrind_control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True)


def total_instructions(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", help="a benchmarks/servers.py name: asgiws-fast, uvicorn-fast...")
    parser.add_argument("kind", choices=["http", "ws", "ws_echo"])
    parser.add_argument("-n", "--count", type=int, default=2000, help="units measured")
    parser.add_argument("--warmup", type=int, default=300, help="units before measuring")
    parser.add_argument("-c", "--connections", type=int, default=16, help="concurrent clients")
    parser.add_argument("--root", type=Path, help="run the server from this tree (a worktree)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/callgrind"), help="dump prefix")
    args = parser.parse_args()

    spec = spec_named(args.server)
    if args.root is not None:
        spec = dataclasses.replace(spec, root=args.root.resolve())
    port = free_port()
    # The benchmark command without its CPU pinning: valgrind runs one thread at a time.
    command = spec.command(port, deflate=False)[3:]
    env = dict(os.environ, PYTHONPATH=str(spec.root), PYTHONHASHSEED="0", **dict(spec.env))
    dump_prefix = f"{args.out}.{args.server}.{args.kind}"
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={dump_prefix}.%p"]
    process = subprocess.Popen(
        [*valgrind, *command], cwd=spec.root, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_listening(port, process)
        run_units(args.kind, port, args.warmup, args.connections)
        callgrind_control("-z", process.pid)  # zero: the warm-up does not count
        run_units(args.kind, port, args.count, args.connections)
        callgrind_control("-d", process.pid)  # dump what the measured units cost
    finally:
        process.terminate()
        process.wait(60)
    dump = Path(f"{dump_prefix}.{process.pid}.1")
    per_unit = total_instructions(dump) / args.count
    print(f"{args.server} {args.kind}: {per_unit:,.0f} instructions per unit (dump: {dump})")


if __name__ == "__main__":
    main()
