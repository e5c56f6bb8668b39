"""The machine's floor for the hub benchmark's paced phase.

    .venv/bin/python benchmarks/send_floor.py [--subscribers 10000] [--seconds 5]

Builds benchmarks/send_floor.c and runs it: one core sends a 66-byte record
to every subscriber's loopback TCP connection every 100 ms, with nothing else
(no WebSocket, no Python, no event loop), and the other core reads them with
epoll and takes their latency.  benchmarks/hub.py reports it as the
`send-floor` row of its paced table: what a delivery costs the kernel here,
and the lowest p99 any server could reach on this machine.  Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_suffix(".c")


def build(directory: Path) -> Path | None:
    """Compiles send_floor.c into `directory`; None (said on stderr) without a
    C compiler: the hub benchmark then has no floor row."""
    binary = directory / "send_floor"
    try:
        subprocess.run(
            [os.environ.get("CC", "cc"), "-O2", str(SOURCE), "-o", str(binary)],
            check=True,
            timeout=120,
            capture_output=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"send_floor: could not build {SOURCE.name} ({exc}); no floor row", file=sys.stderr)
        return None
    return binary


def run(
    binary: Path,
    subscribers: int,
    seconds: float,
    warmup_seconds: float,
    pace_ms: int,
    server_cpu: str,
    client_cpu: str,
) -> dict[str, Any]:
    """One run at `subscribers`, a record every `pace_ms` (the hub benchmark
    passes its paced phase's), shaped as a hub benchmark row: the `paced`
    phase's server CPU µs per delivery (the sender's per send) and latency."""
    warmup = round(warmup_seconds * 1000 / pace_ms)
    rounds = warmup + max(1, round(seconds * 1000 / pace_ms))
    command = [str(binary), str(subscribers), str(rounds), str(pace_ms), str(warmup)]
    done = subprocess.run(
        [*command, server_cpu, client_cpu], capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-6:] or [f"exit {done.returncode}"]}
    floor: dict[str, Any] = json.loads(done.stdout)
    return {
        "paced": {
            "server_us_per_delivery": floor["sender_us_per_send"],
            "loadgen_us_per_read": floor["receiver_us_per_read"],
            "p50_ms": floor["p50_ms"],
            "p99_ms": floor["p99_ms"],
            "max_ms": floor["max_ms"],
        },
        "rounds": rounds - warmup,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument(
        "--pace-ms", type=int, default=100, help="as benchmarks/hub.py's paced phase"
    )
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        binary = build(Path(directory))
        if binary is None:
            return 1
        result = run(
            binary,
            args.subscribers,
            args.seconds,
            args.warmup,
            args.pace_ms,
            args.server_cpu,
            args.client_cpu,
        )
    print(json.dumps(result))
    return 1 if "error" in result else 0


if __name__ == "__main__":
    raise SystemExit(main())
