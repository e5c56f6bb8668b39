"""Build one of asgiws' C accelerators from its source for a test, so the C
path is tested whether or not the package build compiled it (and under
ASGIWS_NO_EXTENSIONS=1, where the package does not import it)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sysconfig
from pathlib import Path
from types import ModuleType


def build_extension(source: Path, name: str, directory: Path) -> ModuleType:
    """Compile `source` into `directory` and import it as module `name`."""
    out = directory / (name.rpartition(".")[2] + sysconfig.get_config_var("EXT_SUFFIX"))
    include = sysconfig.get_paths()["include"]
    compiler = os.environ.get("CC", "cc")
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", f"-I{include}", str(source), "-o", str(out)],
        check=True,
        timeout=120,
    )
    spec = importlib.util.spec_from_file_location(name, out)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
