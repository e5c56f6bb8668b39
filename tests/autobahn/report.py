"""Reading kosoku's report, shared by the server and the client Autobahn tests."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# Behaviours a strict implementation may show; anything else is a failure.
# This holds for the closing handshake too: "FAILED BY CLIENT" there means the
# client had to drop the TCP connection that the server should close first
# (RFC 6455 section 7.1.1), which Autobahn shows as "almost" and we count as failed.
ACCEPTED_BEHAVIOURS = {"OK", "INFORMATIONAL"}
ALL_BEHAVIOURS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")


def run_in_kosoku_subprocess(code: str) -> str:
    """stdout of `code` run by this Python with kosoku's cases imported.

    In a subprocess: importing the cases patches `binascii` process-wide.
    """
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def suite_case_ids() -> list[str]:
    """Every case id kosoku's suite has, asked of kosoku itself, in suite order."""
    return run_in_kosoku_subprocess(
        "from kosoku.cases import CASES; print('\\n'.join(CASES))"
    ).split()


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


def not_strictly_ok(cases: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Case id -> "behavior/behaviorClose" of every case not OK or INFORMATIONAL."""
    return {
        case_id: f"{case['behavior']}/{case['behaviorClose']}"
        for case_id, case in cases.items()
        if case["behavior"] not in ACCEPTED_BEHAVIOURS
        or case["behaviorClose"] not in ACCEPTED_BEHAVIOURS
    }
