"""Allocator tuning: what `Config.malloc_threshold` changes in the process."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from asgiws.config import Config, ConfigError
from asgiws.memory import tune_malloc

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Allocates a 4 MiB block and says whether it lies in the brk heap (as
# /proc/self/maps shows it) rather than in a mapping of its own.
PROBE = """
import ctypes, sys
from asgiws.memory import tune_malloc
if sys.argv[1] == "tuned":
    assert tune_malloc(8 * 1024 * 1024)
block = bytearray(4 * 1024 * 1024)
address = ctypes.addressof((ctypes.c_char * len(block)).from_buffer(block))
with open("/proc/self/maps") as maps:
    for line in maps:
        if line.rstrip().endswith("[heap]"):
            start, end = (int(part, 16) for part in line.split()[0].split("-"))
            print("heap" if start <= address < end else "mapped")
            break
    else:
        print("mapped")
"""


def probe(mode: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="the thresholds are a glibc feature")
def test_tuning_keeps_big_blocks_in_the_heap() -> None:
    assert probe("default") == "mapped"  # glibc maps a fresh 4 MiB block of its own...
    assert probe("tuned") == "heap"  # ...and after tuning takes it from the heap


def test_zero_leaves_the_allocator_alone() -> None:
    assert tune_malloc(0) is False


def test_a_negative_threshold_is_refused() -> None:
    with pytest.raises(ConfigError, match="--malloc-threshold"):
        Config(app="tests.apps:echo", malloc_threshold=-1)
