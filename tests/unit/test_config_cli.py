"""Config is the one declaration of options; the CLI is generated from it."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path
from typing import Literal

import pytest

from asgiws.cli import build_parser, config_from_args, main
from asgiws.config import (
    Config,
    ConfigError,
    Kind,
    allowed_text,
    cli_options,
    flag_of,
    kind_of_type,
    options,
    parse_text,
)
from asgiws.options import connection_options
from asgiws.server import Server, load_app
from asgiws.types import ServerState
from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"


def test_defaults_follow_the_websockets_guide() -> None:
    config = Config()
    assert config.ws_max_size == 2**20
    assert config.ws_max_queue == 32
    assert config.ws_ping_interval == 20.0
    assert config.ws_ping_timeout == 20.0
    assert config.ws_close_timeout == 10.0
    assert config.ws_read_limit == config.ws_write_limit == 2**16
    assert config.ws_per_message_deflate is True


def test_every_option_has_exactly_one_cli_flag() -> None:
    parser = build_parser()
    flags = {s for action in parser._actions for s in action.option_strings}
    for f in cli_options():
        assert flag_of(f) in flags, f.name


def test_uvicorn_flags_are_accepted() -> None:
    config = config_from_args(
        [
            "m:app",
            "--host",
            "0.0.0.0",
            "--port",
            "9000",
            "--ws-max-size",
            "1048576",
            "--ws-max-queue",
            "8",
            "--ws-ping-interval",
            "5",
            "--ws-ping-timeout",
            "3",
            "--ws-per-message-deflate",
            "false",
            "--lifespan",
            "off",
            "--log-level",
            "warning",
            "--no-access-log",
            "--root-path",
            "/api",
            "--no-server-header",
            "--no-date-header",
            "--header",
            "X-A: 1",
            "--header",
            "X-B:2",
            "--http",
            "h11",
            "--loop",
            "asyncio",
        ]
    )
    assert (config.host, config.port) == ("0.0.0.0", 9000)
    assert config.ws_max_queue == 8
    assert config.ws_ping_interval == 5.0
    assert config.ws_per_message_deflate is False
    assert config.access_log is False
    assert config.server_header is False and config.date_header is False
    assert config.headers == ["X-A: 1", "X-B:2"]
    assert (config.http, config.loop, config.lifespan) == ("h11", "asyncio", "off")


def test_bool_flags_take_both_spellings() -> None:
    assert config_from_args(["m:app", "--ws-per-message-deflate"]).ws_per_message_deflate
    assert not config_from_args(["m:app", "--no-ws-per-message-deflate"]).ws_per_message_deflate
    assert not config_from_args(["m:app", "--ws-per-message-deflate=off"]).ws_per_message_deflate


def test_repeatable_origins() -> None:
    config = config_from_args(
        ["m:app", "--ws-origins", "https://a.example", "--ws-origins", "https://b.example"]
    )
    assert config.ws_origins == ["https://a.example", "https://b.example"]


OUT_OF_RANGE: list[tuple[str, object]] = [
    ("port", 70000),
    ("port", -1),
    ("fd", -1),
    ("backlog", -3),
    ("backlog", 0),
    ("listen_sockets", 0),
    ("lifespan", "maybe"),
    ("loop", "no-such-loop"),
    ("http", "h2"),
    ("h11_max_incomplete_event_size", 0),
    ("timeout_keep_alive", -1),
    ("timeout_graceful_shutdown", -0.5),
    ("limit_max_requests", 0),
    ("limit_max_requests_jitter", -1),
    ("workers", 0),
    ("timeout_worker_healthcheck", 0),
    ("reload_delay", -0.1),
    ("malloc_threshold", 99999999999),
    ("malloc_threshold", -1),
    ("limit_concurrency", 0),
    ("headers", ["no-colon"]),
    ("log_level", "verbose"),
    ("ws_max_size", 0),
    ("ws_max_queue", 0),
    ("ws_ping_interval", -5),
    ("ws_ping_timeout", -1),
    ("ws_close_timeout", -1),
    ("ws_read_limit", 0),
    ("ws_write_limit", -1),
    ("ws_deflate_level", 0),
    ("ws_deflate_level", 10),
    ("ws_deflate_mem_level", 0),
    ("ws_deflate_mem_level", 10),
    ("ws_deflate_server_max_window_bits", 7),
    ("ws_deflate_server_max_window_bits", 16),
    ("ws_deflate_client_max_window_bits", 7),
    ("ws_deflate_client_max_window_bits", 16),
    ("ws_shutdown_close_code", 999),
    ("ws_shutdown_close_code", 1000),
    ("ws_handshake_timeout", 0),
    ("metrics_port", 70000),
    ("metrics_path", "metrics"),
    ("ssl_cert_reqs", 3),
]
"""At least one value outside every declared range."""


def declared(name: str) -> dataclasses.Field[object]:
    return next(f for f in options() if f.name == name)


def expected_error(name: str, value: object) -> str:
    item = value[0] if isinstance(value, list) else value
    f = declared(name)
    return f"{flag_of(f)}: {item!r} is not {allowed_text(f)}"


def test_every_declared_range_is_tested() -> None:
    with_range = {f.name for f in options() if allowed_text(f)}
    assert with_range == {name for name, _ in OUT_OF_RANGE}


@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE)
def test_out_of_range_values_are_refused_programmatically(name: str, value: object) -> None:
    with pytest.raises(ConfigError) as exc:
        Config(**{name: value})  # type: ignore[arg-type]
    assert str(exc.value) == expected_error(name, value)


@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE)
def test_out_of_range_values_get_one_line_from_the_cli(
    name: str, value: object, capsys: pytest.CaptureFixture[str]
) -> None:
    text = str(value[0] if isinstance(value, list) else value)
    with pytest.raises(SystemExit) as exc:
        main(["m:app", flag_of(declared(name)), text])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    # The CLI parses the text into the option's type first: 999 stays 999, -5 becomes -5.0.
    assert expected_error(name, config_value(name, text)) in err


def config_value(name: str, text: str) -> object:
    return parse_text(declared(name), text)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("port", 0),
        ("port", 65535),
        ("backlog", 1),
        ("malloc_threshold", 0),
        ("malloc_threshold", 32 * 2**20),
        ("limit_concurrency", None),
        ("limit_concurrency", 1),
        ("timeout_keep_alive", 0),
        ("ws_ping_interval", None),
        ("ws_ping_interval", 0.01),
        ("ws_close_timeout", 0),
        ("ws_deflate_level", 1),
        ("ws_deflate_level", 9),
        ("ws_deflate_server_max_window_bits", 8),
        ("ws_deflate_client_max_window_bits", 15),
        ("ws_shutdown_close_code", 1001),
        ("ws_shutdown_close_code", 1012),
    ],
)
def test_values_at_the_ends_of_a_range_are_kept_as_given(name: str, value: object) -> None:
    assert getattr(Config(**{name: value}), name) == value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options_", "message"),
    [
        ({"port": "80"}, "--port: '80' is not an integer from 0 to 65535"),
        ({"backlog": 2.5}, "--backlog: 2.5 is not an integer >= 1"),
        ({"ws_max_queue": True}, "--ws-max-queue: True is not an integer >= 1"),
        ({"ws_handshake_timeout": None}, "--ws-handshake-timeout: None is not a number > 0"),
        ({"headers": "X-A: 1"}, "--header: 'X-A: 1' is not a list"),
        ({"ssl_certfile": "cert.pem"}, "--ssl-keyfile and --ssl-certfile must be given together"),
    ],
)
def test_wrong_types_and_combinations_are_refused(
    options_: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        Config(**options_)  # type: ignore[arg-type]
    assert str(exc.value) == message


def test_zero_ping_interval_is_kept_and_means_disabled() -> None:
    # 0 and None both disable the keepalive (as documented); Config keeps the
    # value it was given and the connection options read either as "off".
    config = Config(ws_ping_interval=0, ws_ping_timeout=0)
    assert (config.ws_ping_interval, config.ws_ping_timeout) == (0, 0)
    options = connection_options(config)
    assert (options.ping_interval, options.ping_timeout) == (None, None)
    assert Config(ws_ping_interval=None).ws_ping_interval is None


def test_config_never_changes_after_construction() -> None:
    config = Config(port=9000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
    config.validate()
    assert config == Config(port=9000)


def test_config_holds_no_runtime_objects() -> None:
    names = {f.name for f in dataclasses.fields(Config)}
    assert {"loaded", "loaded_app", "ssl", "encoded_headers"}.isdisjoint(names)
    assert not hasattr(Config, "load")
    assert all(f.init for f in dataclasses.fields(Config))


def test_server_load_builds_the_runtime_state() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server = Server(
        Config(app=sample_app, headers=["X-A:  1 ", "x-b:2"], ssl_context=context)
    )
    assert server.server_state.app is not sample_app
    server.load()
    assert server.server_state.app is sample_app
    assert server.custom_headers == [(b"x-a", b"1"), (b"x-b", b"2")]
    assert server.ssl_context is context
    assert server.config.headers == ["X-A:  1 ", "x-b:2"]


def test_server_load_reports_a_bad_app_as_config_error() -> None:
    with pytest.raises(ConfigError, match="could not import module"):
        Server(Config(app="no_such_module_xyz:app")).load()


async def test_an_app_that_was_never_loaded_fails_loudly() -> None:
    with pytest.raises(RuntimeError, match="loads the app"):
        await ServerState().app({}, receive_nothing, send_nothing)


async def receive_nothing() -> dict[str, object]:
    return {}


async def send_nothing(message: object) -> None:
    return None


def test_help_shows_every_range_and_default() -> None:
    help_text = " ".join(build_parser().format_help().split())
    for f in cli_options():
        text = allowed_text(f)
        assert f"[{text}; default: " in help_text or not text, f.name


def test_readme_table_shows_every_range() -> None:
    rows = {
        line.split("`")[1].split()[0]: line
        for line in README.read_text().splitlines()
        if line.startswith("| `--")
    }
    for f in cli_options():
        assert f"| {allowed_text(f)} |" in rows[flag_of(f)], f.name


@pytest.mark.parametrize(
    ("hint", "text", "value"),
    [
        (Path, "/tmp/x.sock", Path("/tmp/x.sock")),
        (Literal["a", "b"], "b", "b"),
        (float | None, "1.5", 1.5),
        (float | None, "none", None),
        (int | None, "OFF", None),
        (bool, "no", False),
        (list[int], "7", 7),
    ],
)
def test_the_cli_type_comes_from_the_resolved_declaration(
    hint: object, text: str, value: object
) -> None:
    assert kind_of_type(hint).parse(text) == value


def test_declared_kinds() -> None:
    assert kind_of_type(Literal["a", "b"]).choices == ("a", "b")
    assert kind_of_type(float | None) == Kind(float, optional=True)
    assert kind_of_type(list[str]) == Kind(str, repeatable=True)
    with pytest.raises(ValueError):
        kind_of_type(int).parse("lots")


def test_zero_and_none_on_the_command_line_disable() -> None:
    assert config_from_args(["m:app", "--ws-ping-interval", "0"]).ws_ping_interval is None
    assert config_from_args(["m:app", "--ws-ping-interval", "none"]).ws_ping_interval is None
    assert config_from_args(["m:app", "--ws-ping-timeout", "0"]).ws_ping_timeout is None
    assert config_from_args(["m:app", "--limit-concurrency", "none"]).limit_concurrency is None


def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        config_from_args(["m:app", "--ws-max-queue", "lots"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--ws-max-queue: 'lots' is not an integer >= 1" in err


def test_load_app_resolves_module_attribute() -> None:
    app = load_app("tests.unit.test_config_cli:sample_app", factory=False, app_dir=".")
    assert app is sample_app
    built = load_app("tests.unit.test_config_cli:make_app", factory=True, app_dir=".")
    assert built is sample_app


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("no_such_module_xyz:app", "could not import module"),
        ("tests.unit.test_config_cli:missing", "not found"),
        ("tests.unit.test_config_cli", "module:attribute"),
        ("tests.unit.test_config_cli:NOT_CALLABLE", "not callable"),
    ],
)
def test_load_app_errors(path: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_app(path, factory=False, app_dir=".")


def test_config_fields_are_dataclass_fields() -> None:
    names = {f.name for f in dataclasses.fields(Config)}
    assert {f.name for f in options()} <= names


async def sample_app(scope: object, receive: object, send: object) -> None:
    """A callable that stands for an ASGI app in the loader tests."""


def make_app() -> object:
    return sample_app


NOT_CALLABLE = 42
