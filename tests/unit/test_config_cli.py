"""Config is the one declaration of options; the CLI is generated from it."""

from __future__ import annotations

import dataclasses

import pytest

from asgiws.cli import build_parser, config_from_args
from asgiws.config import Config, ConfigError, flag_of, load_app, options


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
    for f in options():
        if f.metadata["cli"]:
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


def test_intervals_can_be_disabled() -> None:
    assert config_from_args(["m:app", "--ws-ping-interval", "0"]).ws_ping_interval is None
    assert config_from_args(["m:app", "--ws-ping-interval", "none"]).ws_ping_interval is None


def test_repeatable_origins() -> None:
    config = config_from_args(
        ["m:app", "--ws-origins", "https://a.example", "--ws-origins", "https://b.example"]
    )
    assert config.ws_origins == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize(
    ("options_", "fragment"),
    [
        ({"port": 70000}, "--port"),
        ({"ws_max_size": 0}, "--ws-max-size"),
        ({"ws_deflate_server_max_window_bits": 7}, "--ws-deflate-server-max-window-bits"),
        ({"ws_deflate_level": 10}, "--ws-deflate-level"),
        ({"lifespan": "maybe"}, "--lifespan"),
        ({"headers": ["no-colon"]}, "--header"),
        ({"ssl_certfile": "cert.pem"}, "--ssl-keyfile"),
    ],
)
def test_bad_values_name_the_flag(options_: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Config(**options_)  # type: ignore[arg-type]


def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        config_from_args(["m:app", "--ws-max-queue", "lots"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--ws-max-queue" in err and "lots" in err


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
