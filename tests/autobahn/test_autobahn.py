"""The Autobahn TestSuite (run by kosoku) against `asgiws tests.apps:echo`.

Every case must pass strictly: no FAILED, UNIMPLEMENTED or NON-STRICT case,
and every case of the suite must have run, compression (12.x, 13.x) and big
messages (9.x) included. The counts are printed (see them with `pytest -s`)
and written to `autobahn-summary.json` in the test's tmp dir, beside the
report kosoku writes there.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.autobahn.report import load_report, not_strictly_ok, suite_case_ids, summarize
from tests.conftest import StartServer

KOSOKU_TIMEOUT = 840  # seconds; a full run takes a few minutes on 2 cores

SERVER_ARGS = (
    # The suite's client starts its closing handshake when it sees any ping.
    "--ws-ping-interval",
    "0",
    # Case 9.x sends messages of up to 16 MiB.
    "--ws-max-size",
    "16777216",
)


@pytest.mark.autobahn
@pytest.mark.timeout(KOSOKU_TIMEOUT + 60)
def test_autobahn_suite_passes_strictly(
    run_server: StartServer,
    require_tool: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kosoku = require_tool("kosoku")
    expected_ids = suite_case_ids()
    server = run_server("tests.apps:echo", *SERVER_ARGS)
    outdir = tmp_path / "autobahn-report"

    started = time.monotonic()
    run = subprocess.run(
        [kosoku, "-p", "2", "-o", str(outdir), f"127.0.0.1:{server.port}"],
        capture_output=True,
        text=True,
        timeout=KOSOKU_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    assert (outdir / "index.json").is_file(), (
        f"kosoku wrote no report (exit {run.returncode}):\n{run.stdout}\n{run.stderr}"
    )

    cases = load_report(outdir)
    summary = summarize(cases)
    summary["seconds"] = round(elapsed, 1)
    (tmp_path / "autobahn-summary.json").write_text(json.dumps(summary, indent=2))
    with capsys.disabled():  # the counts belong in every run's output, CI's included
        print(f"\nAutobahn ({summary['total']} cases, {elapsed:.0f}s): {summary['behavior']}")
        print(f"Autobahn close behaviour: {summary['behaviorClose']}")
        print(f"Autobahn slowest cases (ms): {summary['slowest_ms']}")
        print(f"Autobahn report: {outdir / 'index.html'}")

    # Every case ran: the report holds exactly the suite's cases.
    assert sorted(cases) == sorted(expected_ids), (
        f"missing: {sorted(set(expected_ids) - set(cases))[:20]}, "
        f"unexpected: {sorted(set(cases) - set(expected_ids))[:20]}"
    )
    for group in ("9", "12", "13"):
        assert any(case_id.split(".")[0] == group for case_id in cases), f"no {group}.x case ran"

    bad = not_strictly_ok(cases)
    assert not bad, (
        f"{len(bad)} Autobahn cases not strictly OK (behavior/behaviorClose): "
        f"{dict(sorted(bad.items())[:40])}\nkosoku: {run.stderr[-3000:]}\n"
        f"server log tail:\n{server.logs()[-3000:]}"
    )
