"""README.md documents what the project really has."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"


def test_options_table_matches_config() -> None:
    """The CLI options table is generated from Config; regenerate it when an option changes."""
    generated = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "gen_options_doc.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    text = README.read_text()
    begin = text.index("<!-- options-table:begin")
    end = text.index("<!-- options-table:end -->")
    in_readme = text[text.index("\n", begin) + 1 : end].strip()
    assert in_readme == generated, "run: python scripts/gen_options_doc.py --write"


def test_readme_starts_with_the_two_commands() -> None:
    lines = README.read_text().splitlines()
    assert lines[0].startswith("# ")
    assert lines[1:3] == ["", "```sh"]
    commands = lines[3 : lines.index("```", 3)]
    assert [line.split("#")[0].strip() for line in commands] == ["make run", "make test"]
