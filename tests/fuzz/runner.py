"""Run one fuzz target under atheris (coverage-guided, libFuzzer).

    python -m tests.fuzz.runner TARGET --seconds 600 --corpus .fuzz/corpus

The corpus directory keeps what the fuzzer learnt between runs (seeded from
`seeds.py` the first time); a finding is written to `--findings` and the
run exits non-zero.  asgiws and h11 are instrumented at import; the C
accelerator is instrumented too when a build from `--speedups` (made with
clang's `-fsanitize-coverage`, see `make fuzz`) is given, and otherwise
runs uninstrumented, still checked against the pure-Python path.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType


def load_extension(path: Path, name: str = "asgiws.websocket._speedups") -> ModuleType:
    """Import an instrumented `_speedups` build (module `name`) in place of the package's.

    Its coverage hooks (`__sanitizer_cov_*`) live in the libFuzzer that
    atheris loads privately (RTLD_LOCAL) when fuzzing starts; making that
    library global first lets the dynamic linker resolve them.
    """
    import atheris

    core = [
        line.split()[-1]
        for line in Path("/proc/self/maps").read_text().splitlines()
        if "core_with_libfuzzer" in line
    ]
    if not core:
        raise RuntimeError("atheris' libFuzzer is not loaded yet: call from inside the fuzzer")
    ctypes.CDLL(core[0], mode=os.RTLD_NOW | os.RTLD_GLOBAL | os.RTLD_NOLOAD)
    del atheris
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TARGET_NAMES = ("ws_engine", "ws_handshake", "ws_deflate", "http_parser", "uri")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=TARGET_NAMES)
    parser.add_argument("--seconds", type=int, default=20, help="how long to fuzz")
    parser.add_argument("--corpus", type=Path, default=Path(".fuzz/corpus"))
    parser.add_argument("--findings", type=Path, default=Path(".fuzz/findings"))
    parser.add_argument("--speedups", type=Path, help="an instrumented _speedups build")
    parser.add_argument(
        "--http-speedups", type=Path, help="an instrumented asgiws.http._speedups build"
    )
    parser.add_argument("--rss-limit-mb", type=int, default=1024)
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="libFuzzer's random seed: with a fixed one, runs from the same corpus try largely "
        "the same inputs (CI's smoke run); 0, the default, draws a new one each run",
    )
    args = parser.parse_args(argv)

    import atheris

    # Nothing of asgiws may be imported before this block: a module
    # imported earlier would run uninstrumented, invisible to the fuzzer.
    with atheris.instrument_imports(include=["asgiws", "h11"]):
        from tests.fuzz import targets
        from tests.fuzz.seeds import SEEDS
    target = targets.TARGETS[args.target]

    corpus = args.corpus / target.name
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        for i, seed in enumerate(SEEDS[target.name]()):
            (corpus / f"seed-{i:03d}").write_bytes(seed)
    findings = args.findings / target.name
    findings.mkdir(parents=True, exist_ok=True)

    # The C accelerators each target checks against the Python paths.
    builds = {"ws_engine": args.speedups, "http_parser": args.http_speedups}
    speedups_path: Path | None = builds.get(target.name)
    if speedups_path is not None:
        print(f"fuzz: instrumented C accelerator {speedups_path}", file=sys.stderr)
    elif target.name in builds:
        print("fuzz: C accelerator uninstrumented (no build given)", file=sys.stderr)
    one_input = target.run

    def first_input(data: bytes) -> None:
        # The instrumented extension can only load once libFuzzer is up.
        nonlocal one_input
        if speedups_path is not None and target.name == "ws_engine":
            module = load_extension(speedups_path)
            targets.C_SCAN_FRAMES = module.scan_frames
            targets.C_PAYLOAD_ASSEMBLER = module.PayloadAssembler
            targets.C_APPLY_MASK = module.apply_mask
        elif speedups_path is not None:
            module = load_extension(speedups_path, "asgiws.http._speedups")
            # The shared names and values the package hands in, so that their
            # lookup is fuzzed too.
            module.share(tuple(targets.wire_module.SHARED_FIELD_BYTES))
            targets.C_SCAN_HEAD = module.scan_head
        one_input = target.run
        target.run(data)

    one_input = first_input
    atheris.Setup(
        [
            sys.argv[0],
            f"-max_total_time={args.seconds}",
            f"-max_len={target.max_len}",
            f"-rss_limit_mb={args.rss_limit_mb}",
            "-timeout=10",
            "-print_final_stats=1",
            f"-seed={args.seed}",
            f"-artifact_prefix={findings}/",
            str(corpus),
        ],
        lambda data: one_input(data),
    )
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
