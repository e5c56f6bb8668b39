"""The interop matrix in README.md is generated from interop_matrix.py, and
every cell of it is a test that exists."""

from __future__ import annotations

import subprocess
import sys

from tests.integration import interop_matrix
from tests.integration.interop_matrix import COLUMNS, README, ROWS


def test_every_cell_is_a_test_or_says_why_not() -> None:
    for row in ROWS:
        assert set(row.cells) | set(row.not_applicable) == set(COLUMNS), row.name
        assert not set(row.cells) & set(row.not_applicable), row.name
        assert all(row.cells.values()), f"{row.name}: a cell without a test"


def test_every_named_test_exists() -> None:
    wanted = interop_matrix.node_ids()
    modules = sorted({node_id.split("::")[0] for node_id in wanted})
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q"]
    collected = subprocess.run(
        [*command, *modules],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=interop_matrix.REPO_ROOT,
    )
    found = set(collected.stdout.split())
    missing = [node_id for node_id in wanted if node_id not in found]
    assert not missing, f"the matrix names tests that do not exist: {missing}\n{collected.stdout}"


def test_readme_shows_the_matrix() -> None:
    section = interop_matrix.readme_section(README.read_text(encoding="utf-8"))
    assert section == interop_matrix.render(), (
        "README's interop matrix is out of date: "
        "run `python -m tests.integration.interop_matrix --write`"
    )
