"""`--reload`: watch files with watchfiles and tell the supervisor what changed.

Which files count is uvicorn's `FileFilter`: `--reload-include` patterns
(default `*.py`) minus `--reload-exclude` patterns and directories (default
`.*`, `.py[cod]`, `.sw.*`, `~*`); a default dropped by naming it in the other
list.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from asgiws.config import Config, ConfigError

logger = logging.getLogger("asgiws.error")

DEFAULT_INCLUDES = ("*.py",)
DEFAULT_EXCLUDES = (".*", ".py[cod]", ".sw.*", "~*")


class FileFilter:
    """Whether a changed path should restart the server (uvicorn's rules)."""

    def __init__(self, includes: Iterable[str], excludes: Iterable[str]) -> None:
        includes, excludes = list(includes), list(excludes)
        self.includes = sorted({*(p for p in DEFAULT_INCLUDES if p not in excludes), *includes})
        self.excludes = {p for p in DEFAULT_EXCLUDES if p not in includes}
        self.exclude_dirs: list[Path] = []
        for pattern in excludes:
            path = Path(pattern)
            if path.is_dir():
                self.exclude_dirs.append(path.resolve())
            else:
                self.excludes.add(pattern)

    def __call__(self, path: Path) -> bool:
        for include in self.includes:
            if not path.match(include):
                continue
            if str(path).endswith(include):
                return True  # named exactly
            if any(d in path.parents for d in self.exclude_dirs):
                return False
            return not any(path.match(exclude) for exclude in self.excludes)
        return False


def watched_dirs(config: Config) -> list[Path]:
    """`--reload-dir`s (each must be a directory), or the working directory."""
    dirs: list[Path] = []
    for name in config.reload_dirs:
        path = Path(name)
        if not path.is_dir():
            raise ConfigError(f"--reload-dir {name}: not a directory")
        dirs.append(path.resolve())
    return sorted(set(dirs)) or [Path.cwd()]


def display_path(path: Path) -> str:
    try:
        return f"'{path.relative_to(Path.cwd())}'"
    except ValueError:
        return f"'{path}'"


class ChangeWatcher:
    """A thread that calls `changed(paths)` for every batch of relevant changes."""

    def __init__(self, config: Config, changed: Callable[[list[Path]], None]) -> None:
        try:
            import watchfiles  # noqa: F401
        except ImportError:
            raise ConfigError(
                "--reload needs watchfiles: pip install 'asgiws[watchfiles]'"
            ) from None
        self.dirs = watched_dirs(config)
        self.filter = FileFilter(config.reload_includes, config.reload_excludes)
        self.changed = changed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="asgiws-reload", daemon=True)

    def start(self) -> None:
        logger.info(
            "Will watch for changes in these directories: %s", [str(d) for d in self.dirs]
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        from watchfiles import watch

        for changes in watch(
            *self.dirs, watch_filter=None, stop_event=self._stop, ignore_permission_denied=True
        ):
            paths = sorted({Path(os.path.abspath(c[1])) for c in changes})
            relevant = [p for p in paths if self.filter(p)]
            if relevant:
                self.changed(relevant)
