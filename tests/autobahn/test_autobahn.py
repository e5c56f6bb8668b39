"""The Autobahn TestSuite (run by kosoku) against `asgiws tests.apps:echo`.

Every case must pass strictly: no FAILED, UNIMPLEMENTED or NON-STRICT case,
and every case of the suite must have run, compression (12.x, 13.x) and big
messages (9.x) included. The counts are printed (see them with `pytest -s`)
and written to `autobahn-summary.json` in the test's tmp dir, beside the
report kosoku writes there.

The whole suite runs on the default zlib (zlib-ng, which the `standard`
extra installs); the compression cases run once more on the standard
library's zlib (ASGIWS_ZLIB=stdlib), the fallback without zlib-ng.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.autobahn.report import load_report, not_strictly_ok, suite_case_ids, summarize
from tests.conftest import ServerProcess, StartServer

KOSOKU_TIMEOUT = 840  # seconds; a full run takes a few minutes on 2 cores

SERVER_ARGS = (
    # The suite's client starts its closing handshake when it sees any ping.
    "--ws-ping-interval",
    "0",
    # Case 9.x sends messages of up to 16 MiB.
    "--ws-max-size",
    "16777216",
)

# permessage-deflate (RFC 7692): the cases that run on zlib.
COMPRESSION_GROUPS = ("12", "13")


@dataclass
class SuiteRun:
    """One kosoku run against the echo server: its report and what to show."""

    cases: dict[str, dict[str, Any]]
    kosoku: subprocess.CompletedProcess[str]
    server: ServerProcess

    def assert_strictly_ok(self) -> None:
        bad = not_strictly_ok(self.cases)
        assert not bad, (
            f"{len(bad)} Autobahn cases not strictly OK (behavior/behaviorClose): "
            f"{dict(sorted(bad.items())[:40])}\nkosoku: {self.kosoku.stderr[-3000:]}\n"
            f"server log tail:\n{self.server.logs()[-3000:]}"
        )


def run_suite(
    run_server: StartServer,
    kosoku: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    include: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> SuiteRun:
    """Run kosoku's cases (those matching `include`, e.g. "12.*"; all without)
    against the echo server started with `env`, print and save the counts."""
    server = run_server("tests.apps:echo", *SERVER_ARGS, env=env)
    outdir = tmp_path / "autobahn-report"
    patterns = [arg for pattern in include for arg in ("-i", pattern)]

    started = time.monotonic()
    run = subprocess.run(
        [kosoku, "-p", "2", *patterns, "-o", str(outdir), f"127.0.0.1:{server.port}"],
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
    return SuiteRun(cases, run, server)


def assert_ran_exactly(cases: dict[str, dict[str, Any]], expected_ids: list[str]) -> None:
    assert sorted(cases) == sorted(expected_ids), (
        f"missing: {sorted(set(expected_ids) - set(cases))[:20]}, "
        f"unexpected: {sorted(set(cases) - set(expected_ids))[:20]}"
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
    suite = run_suite(run_server, kosoku, tmp_path, capsys)

    # Every case ran: the report holds exactly the suite's cases.
    assert_ran_exactly(suite.cases, expected_ids)
    for group in (*COMPRESSION_GROUPS, "9"):
        assert any(case_id.split(".")[0] == group for case_id in suite.cases), (
            f"no {group}.x case ran"
        )
    suite.assert_strictly_ok()


@pytest.mark.autobahn
@pytest.mark.timeout(KOSOKU_TIMEOUT + 60)
def test_autobahn_compression_cases_pass_strictly_on_the_stdlib_zlib(
    run_server: StartServer,
    require_tool: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kosoku = require_tool("kosoku")
    expected_ids = [i for i in suite_case_ids() if i.split(".")[0] in COMPRESSION_GROUPS]
    assert expected_ids, "kosoku's suite has no 12.x/13.x case"
    suite = run_suite(
        run_server,
        kosoku,
        tmp_path,
        capsys,
        include=tuple(f"{group}.*" for group in COMPRESSION_GROUPS),
        env={"ASGIWS_ZLIB": "stdlib"},
    )
    assert_ran_exactly(suite.cases, expected_ids)
    suite.assert_strictly_ok()
