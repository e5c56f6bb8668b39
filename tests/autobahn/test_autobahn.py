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
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartServer

# Behaviours a strict implementation may show; anything else is a failure.
# This holds for the closing handshake too: "FAILED BY CLIENT" there means the
# client had to drop the TCP connection that the server should close first
# (RFC 6455 section 7.1.1), which Autobahn shows as "almost" and we count as failed.
ACCEPTED_BEHAVIOURS = {"OK", "INFORMATIONAL"}
ALL_BEHAVIOURS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")

KOSOKU_TIMEOUT = 840  # seconds; a full run takes a few minutes on 2 cores

SERVER_ARGS = (
    # The suite's client starts its closing handshake when it sees any ping.
    "--ws-ping-interval",
    "0",
    # Case 9.x sends messages of up to 16 MiB.
    "--ws-max-size",
    "16777216",
)


def suite_case_ids() -> list[str]:
    """Every case id kosoku's suite has, asked of kosoku itself.

    In a subprocess: importing the cases patches `binascii` process-wide.
    """
    result = subprocess.run(
        [sys.executable, "-c", "from kosoku.cases import CASES; print('\\n'.join(CASES))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.split()


def load_report(outdir: Path) -> dict[str, dict[str, Any]]:
    """index.json is {agent: {case id: {"behavior", "behaviorClose", ...}}}."""
    index = json.loads((outdir / "index.json").read_text())
    assert len(index) == 1, f"expected one agent in the report, got {list(index)}"
    (cases,) = index.values()
    assert isinstance(cases, dict)
    return cases


def summarize(cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    behaviours = Counter(case["behavior"] for case in cases.values())
    close_behaviours = Counter(case["behaviorClose"] for case in cases.values())
    return {
        "total": len(cases),
        "behavior": {name: behaviours.get(name, 0) for name in ALL_BEHAVIOURS} | dict(behaviours),
        "behaviorClose": dict(close_behaviours),
        # Where the run's time goes: the slowest cases, in milliseconds.
        "slowest_ms": dict(
            sorted(((k, c["duration"]) for k, c in cases.items()), key=lambda kv: -kv[1])[:10]
        ),
    }


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

    bad = {
        case_id: f"{case['behavior']}/{case['behaviorClose']}"
        for case_id, case in cases.items()
        if case["behavior"] not in ACCEPTED_BEHAVIOURS
        or case["behaviorClose"] not in ACCEPTED_BEHAVIOURS
    }
    assert not bad, (
        f"{len(bad)} Autobahn cases not strictly OK (behavior/behaviorClose): "
        f"{dict(sorted(bad.items())[:40])}\nkosoku: {run.stderr[-3000:]}\n"
        f"server log tail:\n{server.logs()[-3000:]}"
    )
