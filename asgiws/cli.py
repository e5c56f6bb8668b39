"""`asgiws APP [options]`: the command line, generated from `Config`'s declarations.

No option is listed here by hand: each declared option becomes one argparse
argument, shaped by its declared type (`asgiws.config.kind_of`).  Booleans get
`--x/--no-x` and also take uvicorn's `--x true|false` spelling; list options
repeat; optional ones take `none`.  argparse only collects the text; the
declaration turns it into a value (`parse_text`) and `Config` checks it, so
every bad value gets the same one line: `--flag: <value> is not <allowed>`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from asgiws import __version__
from asgiws.config import (
    Config,
    ConfigError,
    OneOf,
    allowed_of,
    allowed_text,
    cli_options,
    default_text,
    flag_of,
    kind_of,
    parse_text,
)

if TYPE_CHECKING:
    from asgiws.server import Server


def help_of(f: dataclasses.Field[Any]) -> str:
    """The declared help, then the allowed values and the default."""
    allowed = allowed_text(f)
    facts = ([allowed] if allowed else []) + [f"default: {default_text(f)}"]
    # argparse %-formats help strings.
    return f"{f.metadata['help']} [{'; '.join(facts)}]".replace("%", "%%")


def add_option(parser: argparse.ArgumentParser, f: dataclasses.Field[Any]) -> None:
    flag = flag_of(f)
    kind = kind_of(f)
    kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_of(f)}
    if kind.base is bool:
        parser.add_argument(flag, nargs="?", const="true", metavar="true|false", **kwargs)
        parser.add_argument(
            "--no-" + flag[2:], action="store_const", const="false", dest=f.name,
            default=argparse.SUPPRESS, help=argparse.SUPPRESS,
        )
        return
    if f.metadata["metavar"]:
        kwargs["metavar"] = f.metadata["metavar"]
    elif isinstance(choices := allowed_of(f), OneOf):
        kwargs["metavar"] = "{" + ",".join(map(str, choices.values)) + "}"
    parser.add_argument(flag, action="append" if kind.repeatable else "store", **kwargs)


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
    for f in cli_options():
        add_option(parser, f)
    return parser


def value_of(f: dataclasses.Field[Any], given: str | list[str]) -> Any:
    """The option's value from its command-line text; ConfigError names the bad text."""
    texts = given if isinstance(given, list) else [given]
    values = []
    for text in texts:
        try:
            values.append(parse_text(f, text))
        except ValueError:
            expected = allowed_text(f) or kind_of(f).noun
            raise ConfigError(f"{flag_of(f)}: {text!r} is not {expected}") from None
    return values if isinstance(given, list) else values[0]


def config_from_args(argv: Sequence[str] | None = None) -> Config:
    parser = build_parser()
    given = vars(parser.parse_args(argv))
    try:
        values = {f.name: value_of(f, given[f.name]) for f in cli_options() if f.name in given}
        return Config(app=given["app"], **values)
    except ConfigError as exc:
        parser.error(str(exc))


def fail(message: str, *, code: int) -> NoReturn:
    print(f"asgiws: error: {message}", file=sys.stderr)
    sys.exit(code)


PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def is_loader_frame(filename: str) -> bool:
    """A frame of asgiws or of the import machinery, not of the user's code."""
    return (
        filename.startswith(PACKAGE_DIR + os.sep)
        or filename.startswith("<frozen importlib")
        or os.sep + "importlib" + os.sep in filename
    )


def app_traceback(exc: BaseException) -> str:
    """The traceback of an error the app raised while loading, from its own
    first frame (a SyntaxError has none: its message shows file and line)."""
    tb = exc.__traceback__
    while tb is not None and is_loader_frame(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def serve(
    config: Config,
    prepare: Callable[[Server], None] | None = None,
    sockets: list[socket.socket] | None = None,
) -> int:
    """Load the app and run one server process; return its exit code.

    A bad APP or option gets one line (exit 2); an app that raises while
    loading gets its own traceback and one line (exit 1).  `prepare` sees the
    server before it starts (a worker links it to its supervisor), which
    listens on `sockets` when given."""
    from asgiws.server import Server

    try:
        server = Server(config)  # sets up logging from the options
        server.load()
    except ConfigError as exc:
        # Module or attribute not found, a bad file: one line says what to fix.
        fail(str(exc), code=2)
    except Exception as exc:
        # The app's own code raised while loading: its traceback, as uvicorn shows it.
        print(app_traceback(exc), end="", file=sys.stderr)
        fail(f"loading {config.app!r} failed: {type(exc).__name__}: {exc}", code=1)
    if prepare is not None:
        prepare(server)
    try:
        return server.run(sockets)
    except ConfigError as exc:
        fail(str(exc), code=2)
    except KeyboardInterrupt:  # pragma: no cover - second CTRL+C during shutdown
        return 1


def main(argv: Sequence[str] | None = None) -> None:
    config = config_from_args(argv)
    from asgiws.supervisors import supervisor_for

    try:
        # --workers N (N > 1) or --reload: a supervisor process runs the servers.
        supervisor = supervisor_for(config)
    except ConfigError as exc:
        fail(str(exc), code=2)
    sys.exit(supervisor.run() if supervisor is not None else serve(config))


if __name__ == "__main__":  # pragma: no cover
    main()
