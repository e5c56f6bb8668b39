"""Build a C extension from its source: asgiws' C accelerators for the tests,
so the C path is tested whether or not the package build compiled it (and
under ASGIWS_NO_EXTENSIONS=1, where the package does not import it), and
the hub benchmark's subscriber counter (benchmarks/hub_counter.c)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sysconfig
from pathlib import Path
from types import ModuleType


def compile_extension(source: Path, name: str, directory: Path) -> Path:
    """Compile `source` into `directory` for module `name`; returns the file."""
    suffix: str = sysconfig.get_config_var("EXT_SUFFIX")
    out = directory / (name.rpartition(".")[2] + suffix)
    include = sysconfig.get_paths()["include"]
    compiler = os.environ.get("CC", "cc")
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", f"-I{include}", str(source), "-o", str(out)],
        check=True,
        timeout=120,
    )
    return out


def load_extension(path: Path, name: str) -> ModuleType:
    """Import the compiled extension at `path` as module `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_extension(source: Path, name: str, directory: Path) -> ModuleType:
    """Compile `source` into `directory` and import it as module `name`."""
    return load_extension(compile_extension(source, name, directory), name)
