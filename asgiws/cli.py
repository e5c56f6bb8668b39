"""`asgiws APP [options]`: the command line, generated from `Config`'s fields.

No option is listed here by hand: each Config field's type annotation, default
and help become one argparse argument.  Booleans get `--x/--no-x` and also take
uvicorn's `--x true|false` spelling.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from asgiws import __version__
from asgiws.config import Config, ConfigError, flag_of, options
from asgiws.logs import configure_logging

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean (true/false)")


def optional(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """`none`/`off` (and `0` for intervals) mean "disabled" for Optional options."""

    def parse(text: str) -> Any:
        if text.lower() in {"none", "off", "null"}:
            return None
        return convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


SCALARS: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str}


def add_option(parser: argparse.ArgumentParser, f: dataclasses.Field[Any]) -> None:
    flag = flag_of(f)
    annotation = str(f.type).replace(" ", "")
    default = f.default if f.default is not dataclasses.MISSING else None
    help_text = f.metadata["help"]
    kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS}
    if f.metadata["metavar"]:
        kwargs["metavar"] = f.metadata["metavar"]
    if annotation.startswith("bool"):
        no_flag = "--no-" + flag[2:]
        parser.add_argument(
            flag,
            nargs="?",
            const=True,
            type=parse_bool,
            metavar="true|false",
            help=f"{help_text} [default: {'on' if default else 'off'}]",
            **kwargs,
        )
        parser.add_argument(
            no_flag, action="store_false", dest=f.name, default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )
        return
    if annotation.startswith("list["):
        parser.add_argument(flag, action="append", help=help_text, **kwargs)
        return
    base, _, rest = annotation.partition("|")
    convert = SCALARS[base]
    if rest == "None":
        convert = optional(convert)
    if f.metadata["choices"]:
        kwargs["choices"] = f.metadata["choices"]
    parser.add_argument(
        flag, type=convert, help=f"{help_text} [default: {default}]", **kwargs
    )


class ArgumentParser(argparse.ArgumentParser):
    """Bad input gets one line that says what to fix, not the whole usage."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see 'asgiws --help')", code=2)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="asgiws",
        description="ASGI server for HTTP/1.1 and WebSocket on one port.",
    )
    parser.add_argument("app", metavar="APP", help="the ASGI app, as 'module:attribute'")
    parser.add_argument("--version", action="version", version=f"asgiws {__version__}")
    for f in options():
        if f.metadata["cli"]:
            add_option(parser, f)
    return parser


def config_from_args(argv: Sequence[str] | None = None) -> Config:
    parser = build_parser()
    namespace = parser.parse_args(argv)
    values = vars(namespace)
    try:
        return Config(**values)
    except ConfigError as exc:
        parser.error(str(exc))
        raise  # pragma: no cover - parser.error exits


def fail(message: str, *, code: int) -> NoReturn:
    print(f"asgiws: error: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    config = config_from_args(argv)
    configure_logging(config.log_level_number, access_log=config.access_log)
    from asgiws.server import Server

    try:
        config.load()
    except ConfigError as exc:
        fail(str(exc), code=2)
    except Exception as exc:
        # The app module itself raised while importing: say what, in one line.
        fail(f"loading {config.app!r} failed: {type(exc).__name__}: {exc}", code=1)
    try:
        code = Server(config).run()
    except ConfigError as exc:
        fail(str(exc), code=2)
    except KeyboardInterrupt:  # pragma: no cover - second CTRL+C during shutdown
        code = 1
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
