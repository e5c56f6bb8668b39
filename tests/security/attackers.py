"""Background attackers for test_attacks.py, run as their own process so
their busy loops do not slow the client that measures the server:

    python -m tests.security.attackers PORT SLOWLORIS FLOODERS SECONDS

opens SLOWLORIS connections that send a request head one header line every
100 ms, and FLOODERS WebSockets that send pings as fast as the server reads
them, for SECONDS; prints "ready" once all are open and the number of
pings sent at the end.
"""

from __future__ import annotations

import asyncio
import sys
import time

from asgiws.websocket.frames import PING
from tests.security.test_attacks import frame, ws_open


async def main(port: int, slow_clients: int, flooders: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    pings = 0

    async def slowloris() -> None:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: a\r\n")
        i = 0
        while time.monotonic() < deadline:
            writer.write(b"X-%d: y\r\n" % i)
            i += 1
            await asyncio.sleep(0.1)
        writer.close()

    async def ping_flood() -> None:
        nonlocal pings
        reader, writer = await ws_open(port)
        burst = frame(PING, b"flood") * 200
        drain = asyncio.ensure_future(reader.read(-1))
        while time.monotonic() < deadline:
            writer.write(burst)
            await writer.drain()
            pings += 200
            await asyncio.sleep(0)  # let the reader take the pongs
        drain.cancel()
        writer.close()

    tasks = [asyncio.ensure_future(slowloris()) for _ in range(slow_clients)]
    tasks += [asyncio.ensure_future(ping_flood()) for _ in range(flooders)]
    await asyncio.sleep(0.5)
    print("ready", flush=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    return pings


if __name__ == "__main__":
    port, slow, flood, seconds = sys.argv[1:5]
    print(asyncio.run(main(int(port), int(slow), int(flood), float(seconds))), flush=True)
