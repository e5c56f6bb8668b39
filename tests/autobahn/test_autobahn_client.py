"""The Autobahn TestSuite with `asgiws.connect()` as the client under test.

`kosoku -m fuzzingserver` serves the cases; `client_driver` connects our
client to each one (two at a time), echoes, offers the permessage-deflate
parameters each 13.x case expects, and asks for the report.  Every case must
pass strictly, compression included: no FAILED, NON-STRICT or UNIMPLEMENTED
case, every closing handshake OK.  The counts are printed (see them with
`pytest -s`) and written to `autobahn-client-summary.json` in the test's tmp
dir, beside the report.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.autobahn.client_driver import case_offers, read_case_count, run_cases
from tests.autobahn.report import load_report, not_strictly_ok, suite_case_ids, summarize

AGENT = "asgiws-client"
PARALLELISM = 2
RUN_TIMEOUT = 600  # seconds; the whole run takes a few minutes on 2 cores
LISTENING = re.compile(r"fuzzingserver listening on ws://(?P<host>[^:]+):(?P<port>\d+)")


class FuzzingServer:
    """`kosoku -m fuzzingserver` on a free port, its output collected."""

    def __init__(self, kosoku: str, outdir: Path) -> None:
        self.process = subprocess.Popen(
            [kosoku, "-m", "fuzzingserver", "-o", str(outdir), "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._listening = threading.Event()
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            match = LISTENING.search(line)
            if match:
                self.url = f"ws://{match['host']}:{match['port']}"
                self._listening.set()
        self._listening.set()  # exited: wake wait_listening

    def wait_listening(self, timeout: float = 30) -> str:
        self._listening.wait(timeout)
        assert self.url, f"kosoku fuzzingserver did not start:\n{self.output()}"
        return self.url

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.mark.autobahn
@pytest.mark.timeout(RUN_TIMEOUT + 120)
def test_autobahn_client_passes_strictly(
    require_tool: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kosoku = require_tool("kosoku")
    case_ids = suite_case_ids()
    offers = case_offers()
    assert len(offers) == 7 * 18, "every 13.x case defines the offers it expects"
    outdir = tmp_path / "autobahn-client-report"
    fuzzing_server = FuzzingServer(kosoku, outdir)
    try:
        url = fuzzing_server.wait_listening()
        started = time.monotonic()

        async def drive() -> int:
            count = await read_case_count(url)
            await asyncio.wait_for(
                run_cases(url, AGENT, case_ids, offers, PARALLELISM), RUN_TIMEOUT
            )
            return count

        count = asyncio.run(drive())
        # Case N of the server is case_ids[N - 1]: the same suite, in the same order.
        assert count == len(case_ids)
        # kosoku writes the report and exits once the run is over (non-zero if
        # a case failed: the report says which).
        fuzzing_server.wait(60)
        elapsed = time.monotonic() - started
    finally:
        fuzzing_server.kill()
    assert (outdir / "index.json").is_file(), f"no report:\n{fuzzing_server.output()}"

    cases = load_report(outdir)
    summary = summarize(cases)
    summary["seconds"] = round(elapsed, 1)
    (tmp_path / "autobahn-client-summary.json").write_text(json.dumps(summary, indent=2))
    with capsys.disabled():  # the counts belong in every run's output, CI's included
        print(f"\nAutobahn client ({summary['total']} cases, {elapsed:.0f}s):", summary["behavior"])
        print(f"Autobahn client close behaviour: {summary['behaviorClose']}")
        print(f"Autobahn client slowest cases (ms): {summary['slowest_ms']}")
        print(f"Autobahn client report: {outdir / 'index.html'}")

    assert sorted(cases) == sorted(case_ids), (
        f"missing: {sorted(set(case_ids) - set(cases))[:20]}, "
        f"unexpected: {sorted(set(cases) - set(case_ids))[:20]}"
    )
    bad = not_strictly_ok(cases)
    assert not bad, (
        f"{len(bad)} Autobahn client cases not strictly OK (behavior/behaviorClose): "
        f"{dict(sorted(bad.items())[:40])}\nkosoku:\n{fuzzing_server.output()[-3000:]}"
    )
