"""Write-type system calls of some processes over a stretch of time.

`/proc/PID/io`'s `syscw` counts `write` and `writev` only, and asgiws's
broadcasts send with `send()` (asgiws/connection/_speedups.c), so the
benchmarks count with perf's syscall tracepoints instead: `write`, `writev`,
`sendto` and `sendmsg`.  perf runs attached to the processes with its
events off, and is told to switch them on and off (its control descriptors,
each command acknowledged), so the count covers exactly the window between
`start()` and `stop()`.  Without perf, or where it cannot read the
tracepoints, `stop()` returns None and the reports say n/a.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess

__all__ = ["WriteCalls"]

EVENTS = tuple(f"syscalls:sys_enter_{name}" for name in ("write", "writev", "sendto", "sendmsg"))
ACK_TIMEOUT = 10.0  # seconds perf may take to attach and answer a command


class WriteCalls:
    """`start()`, then `stop()`: the write calls `pids` made in between."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.process: subprocess.Popen[str] | None = None
        self.control = self.acks = -1

    def start(self) -> None:
        perf = shutil.which("perf")
        if perf is None or not self.pids:
            return
        ctl_read, self.control = os.pipe()
        self.acks, ack_write = os.pipe()
        command = [perf, "stat", "-x", ",", "-D", "-1"]  # CSV; events off until "enable"
        command += ["--control", f"fd:{ctl_read},{ack_write}", "-e", ",".join(EVENTS)]
        command += ["-p", ",".join(map(str, self.pids))]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=(ctl_read, ack_write),
        )
        os.close(ctl_read)
        os.close(ack_write)
        if not self._command("enable"):
            self._end()

    def stop(self) -> int | None:
        """The calls counted, or None when perf could not count them."""
        if self.process is None:
            return None
        counted = self._command("disable")
        output = self._end()
        if not counted or output is None:
            return None
        total, seen = 0, set()
        for line in output.splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[2] in EVENTS:
                if not fields[0].isdigit():  # "<not counted>", "<not supported>"
                    return None
                total += int(fields[0])
                seen.add(fields[2])
        return total if seen == set(EVENTS) else None

    def _command(self, command: str) -> bool:
        """Send perf a control command and wait for its ack."""
        try:
            os.write(self.control, f"{command}\n".encode())
            # poll, not select: the load generator's descriptors go past 1024.
            waiting = select.poll()
            waiting.register(self.acks, select.POLLIN)
            ready = waiting.poll(ACK_TIMEOUT * 1000)
            return bool(ready) and os.read(self.acks, 16).startswith(b"ack")
        except OSError:
            return False

    def _end(self) -> str | None:
        """Stop perf; what it printed (None if it did not end cleanly)."""
        process, self.process = self.process, None
        for fd in (self.control, self.acks):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.control = self.acks = -1
        if process is None:
            return None
        process.send_signal(signal.SIGINT)
        try:
            _, output = process.communicate(timeout=ACK_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return None
        return output
