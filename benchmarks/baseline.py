"""An older revision of asgiws, checked out beside the repo, for `run.py --baseline-rev`.

`BaselineTree(rev)` resolves REV to a commit, checks it out into a temporary
`git worktree` outside the repo (the repo's own working tree, index and any
uncommitted changes in it are not touched), builds the C extension there in
place (see `_build`), and gives `ServerSpec`s whose server imports asgiws from that tree:
`RunningServer` starts them with cwd and PYTHONPATH set to `spec.root`, and
with `python -m` the cwd is `sys.path[0]`, ahead of the venv's editable
install of the current tree.  `close()` removes the worktree.

Both sides must run the same app: when REV's `benchmarks/apps.py` differs
from the current one (working tree included), the current file is copied into
the worktree.  Only `asgiws/` then differs between the two sides.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from benchmarks.servers import REPO, ServerSpec

APP_FILE = "benchmarks/apps.py"
BUILD_TIMEOUT = 300.0


class BaselineError(RuntimeError):
    """REV cannot be checked out, built or imported."""


def git(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


class BaselineTree:
    """A temporary worktree of `rev` with its extension built in place."""

    def __init__(self, rev: str) -> None:
        found = git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        if found.returncode != 0:
            raise BaselineError(f"not a git revision: {rev!r}")
        self.rev = rev
        self.commit = found.stdout.strip()
        self.short = git("rev-parse", "--short", self.commit).stdout.strip()
        self.subject = git("log", "-1", "--format=%s", self.commit).stdout.strip()
        self._tmp = Path(tempfile.mkdtemp(prefix="asgiws-baseline-"))
        self.root = self._tmp / "tree"
        self.app_note = ""
        self.extensions: list[str] = []
        added = git("worktree", "add", "--detach", str(self.root), self.commit)
        if added.returncode != 0:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise BaselineError(f"git worktree add failed: {added.stderr.strip()}")
        try:
            self._same_app()
            self._build()
            self._check_import()
        except BaseException:
            self.close()
            raise

    def _same_app(self) -> None:
        differs = git("diff", "--quiet", self.commit, "--", APP_FILE).returncode != 0
        if not differs:
            self.app_note = f"{APP_FILE} is the same at {self.short} and now"
            return
        target = self.root / APP_FILE
        target.parent.mkdir(exist_ok=True)
        (target.parent / "__init__.py").touch()
        shutil.copyfile(REPO / APP_FILE, target)
        self.app_note = (
            f"{APP_FILE} differs at {self.short}: the current one was copied into the "
            "worktree, so both sides run the same app"
        )

    def _build(self) -> None:
        """The extension modules of REV, built in place; every C source must give one.

        Not a bare `python setup.py build_ext --inplace`: setuptools would then
        be the venv's, and REV's pyproject.toml may need a newer one (it asks for
        setuptools>=68; the venv may have 65, which rejects `license = "MIT"`).
        `pip wheel` builds with REV's [build-system] requires in an isolated
        environment, as `pip install -e` built the current tree's modules, with
        the venv's interpreter; the modules are then unpacked next to their
        sources, where an in-place build puts them.
        """
        if not (self.root / "setup.py").exists() and not (self.root / "pyproject.toml").exists():
            return
        wheels = self._tmp / "wheel"
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                 "--wheel-dir", str(wheels), str(self.root)],
                cwd=self.root, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BaselineError(f"building {self.short} timed out") from exc
        if done.returncode != 0:
            raise BaselineError(f"building {self.short} failed:\n{done.stderr[-2000:]}")
        for wheel in wheels.glob("*.whl"):
            with zipfile.ZipFile(wheel) as archive:
                for member in archive.namelist():
                    if member.startswith("asgiws/") and member.endswith(".so"):
                        archive.extract(member, self.root)
        self.extensions = sorted(
            str(p.relative_to(self.root)) for p in (self.root / "asgiws").rglob("*.so")
        )
        if os.environ.get("ASGIWS_NO_EXTENSIONS", "") not in ("", "0"):
            return
        # The extensions are optional=True: a failed compile is only a warning.
        missing = [
            str(c.relative_to(self.root))
            for c in (self.root / "asgiws").rglob("*.c")
            if not list(c.parent.glob(f"{c.stem}.*.so"))
        ]
        if missing:
            raise BaselineError(
                f"building {self.short} gave no module for {', '.join(missing)}:\n"
                f"{done.stderr[-2000:]}"
            )

    def _check_import(self) -> None:
        """The server's interpreter, set up as RunningServer does, must import REV's asgiws."""
        done = subprocess.run(
            [sys.executable, "-c", "import asgiws; print(asgiws.__file__)"],
            cwd=self.root, env=dict(os.environ, PYTHONPATH=str(self.root)),
            capture_output=True, text=True, check=False,
        )
        where = Path(done.stdout.strip() or ".").resolve()
        if done.returncode != 0 or not where.is_relative_to(self.root.resolve()):
            raise BaselineError(
                f"asgiws at {self.short} is not the one imported from the worktree "
                f"({done.stdout.strip()} {done.stderr[-500:]})"
            )

    def spec(self, current: ServerSpec) -> ServerSpec:
        """`current` run from this tree: same flags, row named NAME@SHORT."""
        return dataclasses.replace(current, name=f"{current.name}@{self.short}", root=self.root)

    def describe(self) -> dict[str, object]:
        return {
            "rev": self.rev,
            "commit": self.commit,
            "short": self.short,
            "subject": self.subject,
            "app": self.app_note,
            "extensions": self.extensions,
        }

    def close(self) -> None:
        removed = git("worktree", "remove", "--force", str(self.root)).returncode == 0
        shutil.rmtree(self._tmp, ignore_errors=True)
        if not removed:
            git("worktree", "prune")  # drops the entry of the now missing directory


def stale_extensions(root: Path = REPO) -> list[str]:
    """C sources under root/asgiws with no built module, or only an older one."""
    stale = []
    for source in (root / "asgiws").rglob("*.c"):
        modules = list(source.parent.glob(f"{source.stem}.*.so"))
        if not modules:
            stale.append(f"{source.relative_to(root)} (not built)")
        elif all(m.stat().st_mtime < source.stat().st_mtime for m in modules):
            stale.append(f"{source.relative_to(root)} (built module older than the source)")
    return stale
