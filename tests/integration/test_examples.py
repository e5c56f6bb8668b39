"""The guide's examples (examples/): each server runs as a user runs it
(`python examples/.../server.py PORT`) and is driven by the third-party
`websockets` client; the client examples run against those servers.

Each example server prints `listening on SCHEME://HOST:PORT` once its socket
listens; with port 0 that line tells the port it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as websockets_serve

from tests.conftest import REPO_ROOT, ServerProcess, StartServer
from tests.silent_client import open_silent_client, read_frames_until_close

TIMEOUT = 10.0
START_TIMEOUT = 15.0
LISTENING = re.compile(r"listening on (?P<scheme>wss?|http)://(?P<host>[^:/\s]+):(?P<port>\d+)")


class ExampleServer:
    """One example script running as a subprocess, its output captured line by line."""

    def __init__(self, script: str, env: Mapping[str, str] | None = None) -> None:
        self.script = script
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / script), "0"],
            cwd=REPO_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: list[str] = []
        self._changed = threading.Condition()
        # Drained by a thread, so that a chatty example never blocks on its pipe.
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        self.port = 0
        self.last_index = -1

    def _read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def output(self) -> str:
        with self._changed:
            return "\n".join(self._lines)

    def wait_for_line(
        self, pattern: str, timeout: float = TIMEOUT, start: int = 0
    ) -> re.Match[str]:
        """The first printed line (from index `start`) matching `pattern`; fail after `timeout`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = start
        with self._changed:
            while True:
                for index in range(seen, len(self._lines)):
                    if match := regex.search(self._lines[index]):
                        self.last_index = index  # where to `start` looking for a later line
                        return match
                seen = max(seen, len(self._lines))
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._reader.is_alive():
                    raise AssertionError(
                        f"{self.script} printed no line matching {pattern!r} within {timeout} s "
                        f"(exit code {self.process.poll()}); output:\n{self.output()}"
                    )
                self._changed.wait(remaining)

    async def line(self, pattern: str, timeout: float = TIMEOUT, start: int = 0) -> re.Match[str]:
        """`wait_for_line` off the event loop, so that clients keep answering pings meanwhile."""
        return await asyncio.to_thread(self.wait_for_line, pattern, timeout, start)

    def wait_ready(self) -> None:
        self.port = int(self.wait_for_line(LISTENING.pattern, START_TIMEOUT)["port"])

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait(self, timeout: float = TIMEOUT) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.script} did not exit within {timeout} s; output:\n{self.output()}"
            ) from None
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(timeout=5)

    def interrupt(self) -> None:
        """Ctrl+C, as a user stops these examples; kill it if it does not exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(TIMEOUT)
        self.kill()


StartExample = Callable[..., ExampleServer]


@pytest.fixture
def start_example() -> Iterator[StartExample]:
    """Factory: `start_example("examples/hello/server.py")` -> a listening ExampleServer."""
    started: list[ExampleServer] = []

    def start(script: str, env: Mapping[str, str] | None = None) -> ExampleServer:
        server = ExampleServer(script, env)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.interrupt()  # these examples run until Ctrl+C, as in the guide


def run_client(script: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run a client example to completion; fail if it does not exit 0."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / script), *args],
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
    )
    assert result.returncode == 0, f"{script} exited {result.returncode}:\n{result.stderr}"
    return result


async def recv(ws: ClientConnection, timeout: float = TIMEOUT) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), timeout)


async def recv_json(ws: ClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    message = await recv(ws, timeout)
    assert isinstance(message, str), f"expected a text message, got {message!r}"
    data = json.loads(message)
    assert isinstance(data, dict)
    return data


async def wait_closed(ws: ClientConnection) -> None:
    await asyncio.wait_for(ws.wait_closed(), TIMEOUT)


def parse_utc(text: str | bytes) -> datetime.datetime:
    assert isinstance(text, str) and text.endswith("Z"), f"not a UTC time: {text!r}"
    return datetime.datetime.fromisoformat(text[:-1] + "+00:00")


# --- hello ------------------------------------------------------------------------------


async def test_hello_server_greets_then_closes(start_example: StartExample) -> None:
    server = start_example("examples/hello/server.py")
    async with connect(server.ws_url) as ws:
        await ws.send("Alice")
        assert await recv(ws) == "Hello Alice!"
        # The handler returned: the server closes the connection normally.
        await wait_closed(ws)
        assert ws.protocol.close_code == 1000
    await server.line(r"^<<< Alice$")
    await server.line(r"^>>> Hello Alice!$")


def test_hello_client_prints_greeting_from_example_server(start_example: StartExample) -> None:
    server = start_example("examples/hello/server.py")
    result = run_client("examples/hello/client.py", str(server.port), stdin="Bob\n")
    assert ">>> Bob" in result.stdout
    assert "<<< Hello Bob!" in result.stdout
    server.wait_for_line(r"^<<< Bob$")


async def test_hello_client_talks_to_a_websockets_server() -> None:
    # The client example against the reference implementation's server.
    async def greet(ws: ServerConnection) -> None:
        name = await ws.recv()
        await ws.send(f"Hi {name!s}, from websockets")

    async with websockets_serve(greet, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        result = await asyncio.to_thread(
            run_client, "examples/hello/client.py", str(port), stdin="Eve\n"
        )
    assert "<<< Hi Eve, from websockets" in result.stdout


# --- wss --------------------------------------------------------------------------------


def trusting(certificate: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(certificate)
    return context


async def test_wss_server_serves_tls_with_its_generated_certificate(
    start_example: StartExample,
) -> None:
    server = start_example("examples/wss/server.py")
    certificate = server.wait_for_line(r"^certificate: (?P<path>.+)$")["path"]
    assert Path(certificate).is_file()
    uri = f"wss://localhost:{server.port}"
    async with connect(uri, ssl=trusting(certificate), open_timeout=TIMEOUT) as ws:
        await ws.send("Carol")
        assert await recv(ws) == "Hello Carol!"
    # Verification is on: a client that does not trust the certificate is refused.
    with pytest.raises(ssl.SSLCertVerificationError):
        async with connect(uri, ssl=ssl.create_default_context(), open_timeout=TIMEOUT):
            pass


def test_wss_client_trusts_the_certificate_it_is_given(start_example: StartExample) -> None:
    server = start_example("examples/wss/server.py")
    certificate = server.wait_for_line(r"^certificate: (?P<path>.+)$")["path"]
    result = run_client("examples/wss/client.py", str(server.port), certificate, stdin="Dan\n")
    assert "<<< Hello Dan!" in result.stdout
    # The generated certificate and key do not outlive the server.
    server.interrupt()
    assert not Path(certificate).parent.exists()


# --- show_time ----------------------------------------------------------------------------


async def assert_time_pushed(uri: str) -> None:
    """The first time comes at once, the next within the 5 s maximum, both current UTC."""
    async with connect(uri) as ws:
        received = [parse_utc(await recv(ws, timeout=2))]
        received.append(parse_utc(await recv(ws, timeout=5 + 1)))
    now = datetime.datetime.now(datetime.timezone.utc)
    assert received[0] < received[1] <= now
    assert now - received[0] < datetime.timedelta(seconds=8)


async def test_show_time_pushes_the_time_and_serves_its_page(start_example: StartExample) -> None:
    server = start_example("examples/show_time/server.py")
    await assert_time_pushed(server.ws_url + "/ws/show_time")
    async with httpx.AsyncClient(base_url=server.http_url, timeout=TIMEOUT) as http:
        page = await http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert 'new WebSocket(scheme + host + "/ws/show_time")' in page.text
        assert (await http.get("/elsewhere")).status_code == 404


# --- counter ------------------------------------------------------------------------------


async def assert_counter_shared(uri: str) -> None:
    """Two users: both see the count of users and every click, whoever made it."""
    async with connect(uri) as first:
        assert await recv_json(first) == {"type": "users", "count": 1}
        start = (await recv_json(first))["value"]
        assert isinstance(start, int)
        async with connect(uri) as second:
            assert await recv_json(first) == {"type": "users", "count": 2}
            assert await recv_json(second) == {"type": "users", "count": 2}
            assert await recv_json(second) == {"type": "value", "value": start}

            await first.send(json.dumps({"action": "plus"}))
            for ws in (first, second):
                assert await recv_json(ws) == {"type": "value", "value": start + 1}
            await second.send(json.dumps({"action": "minus"}))
            await second.send(json.dumps({"action": "minus"}))
            for ws in (first, second):
                assert await recv_json(ws) == {"type": "value", "value": start}
                assert await recv_json(ws) == {"type": "value", "value": start - 1}

            # A message the counter does not understand is logged, not fatal.
            await second.send("not json")
            await second.send(json.dumps({"action": "reset"}))
            await second.send(json.dumps({"action": "plus"}))
            assert await recv_json(second) == {"type": "value", "value": start}
            assert await recv_json(first) == {"type": "value", "value": start}
        assert await recv_json(first) == {"type": "users", "count": 1}


async def test_counter_is_shared_by_all_clients(start_example: StartExample) -> None:
    server = start_example("examples/counter/server.py")
    await assert_counter_shared(server.ws_url + "/ws/counter")
    await server.line(r"unsupported event")
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        page = await http.get(server.http_url + "/")
    assert page.status_code == 200
    assert 'class="plus button"' in page.text


# --- patterns -------------------------------------------------------------------------------


async def test_consumer_processes_every_message_in_order(start_example: StartExample) -> None:
    server = start_example("examples/patterns/consumer.py")
    async with connect(server.ws_url) as ws:
        for message in ("one", "two", b"\x00\x01"):
            await ws.send(message)
    first = (await server.line(r"^consumed: 'one'$")).string
    lines = server.output().splitlines()
    index = lines.index(first)
    assert lines[index + 1 : index + 3] == ["consumed: 'two'", r"consumed: b'\x00\x01'"]
    await server.line(r"^client left with code 1000$")


async def test_producer_sends_what_it_produces_until_the_client_leaves(
    start_example: StartExample,
) -> None:
    server = start_example("examples/patterns/producer.py")
    async with connect(server.ws_url) as ws:
        assert [await recv(ws) for _ in range(3)] == ["message 1", "message 2", "message 3"]
    # The next send() after the close raised ConnectionClosed and ended the loop.
    await server.line(r"^client left with code 1000$")


async def test_consumer_producer_runs_both_and_cancels_the_producer(
    start_example: StartExample,
) -> None:
    server = start_example("examples/patterns/consumer_producer.py")
    async with connect(server.ws_url) as ws:
        await ws.send("from the client")
        assert await recv(ws) == "message 1"
        await ws.send("again")
        assert await recv(ws) == "message 2"
    await server.line(r"^consumed: 'from the client'$")
    await server.line(r"^consumed: 'again'$")
    await server.line(r"^consumer finished first; the other one was cancelled$")


async def test_register_tells_everyone_who_is_connected(start_example: StartExample) -> None:
    server = start_example("examples/patterns/register.py")
    async with connect(server.ws_url) as first:
        assert await recv(first) == "1 connected"
        async with connect(server.ws_url) as second:
            assert await recv(first) == "2 connected"
            assert await recv(second) == "2 connected"
        # Unregistered in `finally` once the second client left.
        assert await recv(first) == "1 connected"


async def test_pubsub_delivers_to_the_channel_subscribers_only(start_example: StartExample) -> None:
    server = start_example("examples/patterns/pubsub.py")
    url = server.ws_url
    async with connect(url) as news, connect(url) as sports, connect(url) as publisher:
        await news.send(json.dumps({"subscribe": "news"}))
        assert await recv_json(news) == {"subscribed": "news"}
        await sports.send(json.dumps({"subscribe": "sports"}))
        assert await recv_json(sports) == {"subscribed": "sports"}

        await publisher.send(json.dumps({"publish": "news", "message": "hello"}))
        assert await recv_json(publisher) == {"published": "news", "receivers": 1}
        assert await recv_json(news) == {"channel": "news", "message": "hello"}

        # sports got nothing from "news": the next thing it receives is its own channel.
        await sports.send(json.dumps({"publish": "sports", "message": "goal"}))
        assert await recv_json(sports) == {"channel": "sports", "message": "goal"}
        assert await recv_json(sports) == {"published": "sports", "receivers": 1}

        await news.send(json.dumps({"unsubscribe": "news"}))
        assert await recv_json(news) == {"unsubscribed": "news"}
        await publisher.send(json.dumps({"publish": "news", "message": "anyone?"}))
        assert await recv_json(publisher) == {"published": "news", "receivers": 0}

        await publisher.send("{not json")
        assert "error" in await recv_json(publisher)
    # A subscriber that leaves is no longer counted.
    async with connect(url) as gone:
        await gone.send(json.dumps({"subscribe": "weather"}))
        assert await recv_json(gone) == {"subscribed": "weather"}
    async with connect(url) as publisher:
        await publisher.send(json.dumps({"publish": "weather", "message": "rain"}))
        assert await recv_json(publisher) == {"published": "weather", "receivers": 0}


async def test_recv_timeout_closes_an_idle_connection(start_example: StartExample) -> None:
    server = start_example("examples/patterns/recv_timeout.py")
    async with connect(server.ws_url) as ws:
        await ws.send("hi")
        assert await recv(ws) == "hi"
        idle_since = time.monotonic()
        assert await recv(ws) == "no message for 2 s: closing"
        assert time.monotonic() - idle_since >= 2.0 - 0.1  # not before the timeout
        await wait_closed(ws)
        assert ws.protocol.close_code == 1000
        assert ws.protocol.close_reason == "idle timeout"


async def test_keepalive_measures_latency_and_drops_a_silent_peer(
    start_example: StartExample,
) -> None:
    server = start_example(
        "examples/patterns/keepalive.py", env={"PING_INTERVAL": "0.3", "PING_TIMEOUT": "0.5"}
    )
    async with connect(server.ws_url) as ws:
        first = await server.line(r"^(\S+) first ping answered in ([\d.]+) ms$")
        conn_id = first[1]
        # Keepalive pings keep updating `latency`: two reports, both measured (> 0).
        start = 0
        for _ in range(2):
            report = await server.line(rf"^{conn_id} latency ([\d.]+) ms$", start=start)
            assert float(report[1]) > 0
            start = server.last_index + 1
        # The client answered every ping, so its connection is still useful.
        await ws.send("still here")
        assert await recv(ws) == "still here"

    silent, leftover = await asyncio.to_thread(open_silent_client, server.port)
    with silent:
        started = time.monotonic()
        opcodes, code = await asyncio.to_thread(read_frames_until_close, silent, leftover)
    assert 0x9 in opcodes  # it was pinged...
    assert code == 1011  # ...and closed for not answering
    assert time.monotonic() - started < TIMEOUT


async def test_shutdown_on_sigterm_closes_clients_with_1001_and_exits_0(
    start_example: StartExample,
) -> None:
    server = start_example("examples/patterns/shutdown.py")
    async with connect(server.ws_url) as first, connect(server.ws_url) as second:
        for ws in (first, second):
            await ws.send("echo?")
            assert await recv(ws) == "echo?"
        server.process.send_signal(signal.SIGTERM)
        for ws in (first, second):
            await wait_closed(ws)
            assert ws.protocol.close_code == 1001
    assert await asyncio.to_thread(server.wait) == 0
    assert "server stopped" in server.output()


# --- the same demos as Starlette routes -------------------------------------------------------


@pytest.fixture
def starlette_example(run_server: StartServer) -> ServerProcess:
    return run_server("examples.starlette_app.app:app")


async def test_starlette_show_time_route_pushes_the_time(starlette_example: ServerProcess) -> None:
    await assert_time_pushed(starlette_example.ws_url + "/ws/show_time")


async def test_starlette_counter_route_is_shared_through_broadcast(
    starlette_example: ServerProcess,
) -> None:
    await assert_counter_shared(starlette_example.ws_url + "/ws/counter")


@pytest.mark.parametrize(
    ("path", "needle"),
    [("/show_time", '"/ws/show_time"'), ("/counter", '"/ws/counter"'), ("/", 'href="/counter"')],
)
async def test_starlette_app_serves_the_demo_pages(
    starlette_example: ServerProcess, path: str, needle: str
) -> None:
    async with httpx.AsyncClient(base_url=starlette_example.url, timeout=TIMEOUT) as http:
        page = await http.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert needle in page.text


def test_readme_lists_every_example_script_with_its_command() -> None:
    readme = (REPO_ROOT / "examples" / "README.md").read_text()
    scripts = sorted(
        path.relative_to(REPO_ROOT).as_posix()
        for path in (REPO_ROOT / "examples").glob("*/*.py")
        if path.parent.name != "starlette_app" and path.name != "__init__.py"
    )
    assert len(scripts) == 16
    for script in scripts:
        # ASGI apps (app.py) are run by the asgiws command, the others by python.
        module = script.removesuffix(".py").replace("/", ".")
        command = f"asgiws {module}:app" if script.endswith("/app.py") else f"python {script}"
        assert command in readme, f"examples/README.md has no command for {script}"
    assert "asgiws examples.starlette_app.app:app" in readme


# --- Ctrl+C ---------------------------------------------------------------------------------

# Every example server: each prints its `listening on` line and runs until stopped.
RUN_FOREVER = sorted(
    path.relative_to(REPO_ROOT).as_posix()
    for path in (REPO_ROOT / "examples").glob("*/*.py")
    if "listening on" in path.read_text()
)


@pytest.mark.parametrize("script", RUN_FOREVER)
def test_ctrl_c_stops_an_example_server_quietly(start_example: StartExample, script: str) -> None:
    server = start_example(script)
    server.process.send_signal(signal.SIGINT)
    assert server.wait() == 0, server.output()
    assert "Traceback" not in server.output()
    assert "KeyboardInterrupt" not in server.output()
