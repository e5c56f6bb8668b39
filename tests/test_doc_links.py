"""Every relative link in the README and docs/ leads to a file of the repository,
so a reader who cloned it never follows a link to nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DOCS = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")])
# [text](target) and [text]: target; the target up to a space, ")" or "#".
LINK = re.compile(r"\]\((?P<inline>[^)\s#]*)[^)]*\)|^\[[^\]]+\]:\s*(?P<ref>[^\s#]+)", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # https:, mailto:, ...


def relative_links(doc: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)  # code blocks are not links
    targets = (m["inline"] if m["inline"] is not None else m["ref"] for m in LINK.finditer(text))
    return [t for t in targets if t and not EXTERNAL.match(t)]


def test_the_docs_have_relative_links() -> None:
    assert sum(len(relative_links(doc)) for doc in DOCS) > 5


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.relative_to(REPO_ROOT).as_posix())
def test_every_relative_link_points_to_a_file_in_the_repository(doc: Path) -> None:
    broken = []
    for target in relative_links(doc):
        path = (doc.parent / target).resolve()
        if not path.exists() or not path.is_relative_to(REPO_ROOT):
            broken.append(target)
    assert not broken, f"{doc.relative_to(REPO_ROOT)} links to missing files: {broken}"
