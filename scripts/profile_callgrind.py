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
- ws_echo: the same with one echoed text message before the close;
- ws_text_echo / ws_deflate_echo: one echoed ~1 KiB JSON-like text message
  (loadgen's ws_deflate_off / ws_deflate_on): `--connections` connections
  are opened, negotiating permessage-deflate for ws_deflate_echo (offering
  `client_max_window_bits`, compressing with zlib, context takeover, as
  loadgen's client does), and stay open from the warm-up to the end, so only
  the messages are counted; the server runs with deflate enabled.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import os
import re
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.loadgen import COMPRESSIBLE_TEXT  # noqa: E402
from benchmarks.servers import spec_named  # noqa: E402

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
CLOSE_FRAME = b"\x88\x82\x00\x00\x00\x00\x03\xe8"  # masked (zero mask), code 1000
ECHO_FRAME = b"\x81\x85\x00\x00\x00\x00hello"  # masked text "hello"
ECHO_MASK = b"\x12\x34\x56\x78"
SYNC_TAIL = b"\x00\x00\xff\xff"
# Handshakes come from many source addresses so ephemeral ports last.
SOURCES = tuple(f"127.0.0.{host}" for host in range(2, 66))
MESSAGE = COMPRESSIBLE_TEXT.encode()  # loadgen's ws_deflate_* message
UNIT_KINDS = ("http", "ws", "ws_echo")
MESSAGE_KINDS = ("ws_text_echo", "ws_deflate_echo")
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


def masked_frame(first_byte: int, payload: bytes) -> bytes:
    """A client frame: FIN, `first_byte`'s RSV1 and opcode, masked with ECHO_MASK."""
    length = len(payload)
    if length < 126:
        header = bytes((first_byte, 0x80 | length))
    else:
        header = struct.pack(">BBH", first_byte, 0x80 | 126, length)
    key = int.from_bytes((ECHO_MASK * (length // 4 + 1))[:length], "big")
    body = (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big")
    return header + ECHO_MASK + body


class MessageEchoes:
    """Text echo round trips on connections kept open between `run` calls
    (ws_text_echo, ws_deflate_echo)."""

    def __init__(self, port: int, connections: int, deflate: bool) -> None:
        self.port = port
        self.connections = connections
        self.deflate = deflate
        self.payload = MESSAGE
        self.streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, Any, Any]] = []

    async def open(self) -> None:
        offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        request = (
            f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
            f"{offer if self.deflate else ''}\r\n"
        ).encode()
        for _ in range(self.connections):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            if not head.startswith("HTTP/1.1 101"):
                raise RuntimeError(f"no 101: {head!r}")
            compressor = decompressor = None
            if self.deflate:
                agreed = re.search(r"(?im)^sec-websocket-extensions:(.*)$", head)
                if agreed is None or "permessage-deflate" not in agreed.group(1):
                    raise RuntimeError(f"permessage-deflate not agreed: {head!r}")
                bits = re.search(r"client_max_window_bits=(\d+)", agreed.group(1))
                wbits = max(9, int(bits.group(1))) if bits else 15
                if "no_context_takeover" in agreed.group(1):
                    raise RuntimeError(f"expected context takeover: {agreed.group(1)!r}")
                # Level 1 as loadgen's client: the server's work barely depends on it.
                compressor = zlib.compressobj(1, zlib.DEFLATED, -wbits)
                decompressor = zlib.decompressobj(-15)
            self.streams.append((reader, writer, compressor, decompressor))

    async def run(self, count: int) -> None:
        left = count

        async def one(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, comp: Any, decomp: Any
        ) -> None:
            nonlocal left
            while left > 0:
                left -= 1
                if comp is not None:
                    data = comp.compress(self.payload) + comp.flush(zlib.Z_SYNC_FLUSH)
                    writer.write(masked_frame(0xC1, data[:-4]))
                else:
                    writer.write(masked_frame(0x81, self.payload))
                b0, b1 = await reader.readexactly(2)
                length = b1 & 0x7F
                if length == 126:
                    (length,) = struct.unpack(">H", await reader.readexactly(2))
                payload = await reader.readexactly(length)
                if b0 & 0x40:
                    payload = decomp.decompress(payload + SYNC_TAIL)
                if b0 != (0xC1 if comp is not None else 0x81) or payload != self.payload:
                    raise RuntimeError(f"wrong echo: {b0:#x} {payload[:40]!r}")

        await asyncio.gather(*(one(*stream) for stream in self.streams))

    async def close(self) -> None:
        for reader, writer, _, _ in self.streams:
            writer.write(CLOSE_FRAME)
            await reader.read()
            writer.close()


def run_units(kind: str, port: int, count: int, connections: int) -> None:
    if kind == "http":
        asyncio.run(http_units(port, count, connections))
    else:
        asyncio.run(ws_units(port, count, connections, echo=kind == "ws_echo"))


def measure_messages(kind: str, port: int, args: argparse.Namespace, pid: int) -> None:
    """The message units: the connections outlive the zeroing of the counters."""

    async def run() -> None:
        echoes = MessageEchoes(port, args.connections, deflate=kind == "ws_deflate_echo")
        await echoes.open()
        await echoes.run(args.warmup)
        callgrind_control("-z", pid)  # zero: the handshakes and the warm-up do not count
        await echoes.run(args.count)
        callgrind_control("-d", pid)  # dump what the measured units cost
        await echoes.close()

    asyncio.run(run())


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


def totals(dump: Path) -> dict[str, int]:
    """The dump's event totals by name: Ir (instructions), and with the cache
    simulation D1mr, DLmr... (misses)."""
    events: list[str] = []
    for line in dump.read_text().splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith(("summary:", "totals:")):
            return dict(zip(events, map(int, line.split()[1:]), strict=False))
    raise RuntimeError(f"no totals in {dump}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", help="a benchmarks/servers.py name: asgiws-fast, uvicorn-fast...")
    parser.add_argument("kind", choices=[*UNIT_KINDS, *MESSAGE_KINDS])
    parser.add_argument("-n", "--count", type=int, default=2000, help="units measured")
    parser.add_argument("--warmup", type=int, default=300, help="units before measuring")
    parser.add_argument("-c", "--connections", type=int, default=16, help="concurrent clients")
    parser.add_argument("--root", type=Path, help="run the server from this tree (a worktree)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/callgrind"), help="dump prefix")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for the server's command line (repeatable), e.g. "
        "--server-arg=--ws-deflate-server-max-window-bits=15",
    )
    parser.add_argument(
        "--cache-sim",
        action="store_true",
        help="also simulate the caches: misses per unit in L1 and the last level (LL)",
    )
    args = parser.parse_args()

    spec = spec_named(args.server)
    if args.root is not None:
        spec = dataclasses.replace(spec, root=args.root.resolve())
    port = free_port()
    # The benchmark command without its CPU pinning: valgrind runs one thread at a time.
    command = [*spec.command(port, deflate=args.kind == "ws_deflate_echo")[3:], *args.server_arg]
    env = dict(os.environ, PYTHONPATH=str(spec.root), PYTHONHASHSEED="0", **dict(spec.env))
    dump_prefix = f"{args.out}.{args.server}.{args.kind}"
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={dump_prefix}.%p"]
    if args.cache_sim:
        valgrind.append("--cache-sim=yes")
    process = subprocess.Popen(
        [*valgrind, *command], cwd=spec.root, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_listening(port, process)
        if args.kind in MESSAGE_KINDS:
            measure_messages(args.kind, port, args, process.pid)
        else:
            run_units(args.kind, port, args.warmup, args.connections)
            callgrind_control("-z", process.pid)  # zero: the warm-up does not count
            run_units(args.kind, port, args.count, args.connections)
            callgrind_control("-d", process.pid)  # dump what the measured units cost
    finally:
        process.terminate()
        process.wait(60)
    dump = Path(f"{dump_prefix}.{process.pid}.1")
    counts = totals(dump)
    per_unit = counts["Ir"] / args.count
    print(f"{args.server} {args.kind}: {per_unit:,.0f} instructions per unit (dump: {dump})")
    if args.cache_sim:
        misses = ", ".join(
            f"{name} {counts[name] / args.count:,.0f}"
            for name in ("I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw")
        )
        print(f"  misses per unit: {misses}")


if __name__ == "__main__":
    main()
