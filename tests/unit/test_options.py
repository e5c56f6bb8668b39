"""ConnectionOptions from a Config (server) and from keywords (client)."""

from __future__ import annotations

import dataclasses
import logging
import ssl

import pytest

from asgiws.config import Config, ConfigError
from asgiws.options import UNLIMITED, connection_options, connection_options_from_keywords
from asgiws.server import Server
from asgiws.websocket.deflate import DeflateOptions


def test_server_options_come_from_config_and_are_built_once_per_config() -> None:
    logger = logging.getLogger("test.options")
    config = Config(
        ws_max_size=1000,
        ws_max_queue=8,
        ws_close_timeout=3.0,
        ws_deflate_server_max_window_bits=10,
        ws_shutdown_close_code=1001,
        ws_logger=logger,
    )
    options = connection_options(config)
    assert (options.max_size, options.max_queue, options.close_timeout) == (1000, 8, 3.0)
    assert (options.shutdown_close_code, options.logger) == (1001, logger)
    assert options.deflate == DeflateOptions(
        level=config.ws_deflate_level,
        mem_level=config.ws_deflate_mem_level,
        server_max_window_bits=10,
    )


def test_disabled_keepalive_compression_and_size_limit() -> None:
    options = connection_options(
        Config(ws_ping_interval=None, ws_ping_timeout=None, ws_per_message_deflate=False)
    )
    assert (options.ping_interval, options.ping_timeout, options.deflate) == (None, None, None)
    options = connection_options_from_keywords(
        ping_interval=0, ping_timeout=0, compression=None, max_size=None
    )
    assert (options.ping_interval, options.ping_timeout, options.deflate) == (None, None, None)
    assert options.max_size is None
    assert connection_options_from_keywords(max_queue=None).max_queue == UNLIMITED


def test_client_options_default_to_config_defaults() -> None:
    server = connection_options(Config())
    # The one difference: a server knows its transports (plain sockets here).
    assert connection_options_from_keywords() == dataclasses.replace(server, closes_at_once=False)


def test_only_a_server_without_tls_closes_without_a_close_timer() -> None:
    assert connection_options(Config()).closes_at_once
    tls = Config(ssl_context=ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))
    assert not connection_options(tls).closes_at_once
    assert not connection_options_from_keywords().closes_at_once


def test_client_options_refuse_unknown_names_and_bad_values() -> None:
    with pytest.raises(TypeError, match="port"):
        connection_options_from_keywords(port=80)
    with pytest.raises(TypeError, match="ws_nonsense"):
        connection_options_from_keywords(ws_nonsense=1)
    with pytest.raises(ConfigError, match="max_queue"):
        connection_options_from_keywords(max_queue=0)
    with pytest.raises(ConfigError, match="ws_deflate_client_max_window_bits"):
        connection_options_from_keywords(ws_deflate_client_max_window_bits=16)
    with pytest.raises(ConfigError, match="compression"):
        connection_options_from_keywords(compression="gzip")


def test_the_server_builds_the_connection_options_once_from_its_config() -> None:
    config = Config(app="tests.apps:echo", ws_max_size=1000, ws_max_queue=8)
    server = Server(config)
    server.load()
    options = server.server_state.ws_options
    assert options == connection_options(config)
    assert options is not None and (options.max_size, options.max_queue) == (1000, 8)
    server.load()  # idempotent: the same object for every connection
    assert server.server_state.ws_options is options
