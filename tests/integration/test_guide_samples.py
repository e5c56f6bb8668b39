"""Every Python code block of the websockets 10 guide, run on asgiws.

The guide is read at test time from `../shared/reference/` beside the
repository (it is the guide's own code: never copied here).  Each sample gets
only the replacement a user makes when switching, `import websockets` ->
`import asgiws as websockets`, plus two changes that do not touch what the
sample does: its fixed port (8765, 5678, 6789) becomes a free one, so that
tests running side by side do not collide, and the logging sample's logger
name `'websockets'` becomes `'asgiws'` (the README's "coming from
websockets" section lists the logger names).  Samples run as real
processes where the guide runs them as scripts; the peers are the guide's
own client samples or the third-party `websockets` client, as the guide
pairs them.  Samples that cannot run alone are listed in FRAGMENTS by
their position, with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
from websockets.asyncio.client import connect as peer_connect
from websockets.exceptions import ConnectionClosedOK as PeerClosedOK

REPO_ROOT = Path(__file__).resolve().parents[2]
GUIDE = REPO_ROOT.parent / "shared" / "reference" / "websockets-10-guide.zh.md"
TIMEOUT = 10.0

# Position (0-based, among the guide's ```python/```py blocks) -> why the
# block is not run as a program of its own.
FRAGMENTS = {
    0: "a class signature (WebSocketCommonProtocol(...)), not a program",
    1: "two lines with a top-level await (ping latency); test_handler_api covers ping()",
    2: "the serve() signature, not a program",
    3: "an empty code block",
    13: "calls consumer_handler(websocket, path) with `path` undefined: a NameError "
    "in the guide itself, on websockets too",
    14: "asyncio.wait() on bare coroutines: refused since Python 3.11 "
    "(TypeError), on websockets too",
    17: "a top-level `async for` skeleton with `...` as its body",
    19: "one line with a top-level await (wait_for(recv())); test_connection covers it",
}
EXPECTED_BLOCKS = 21


def guide_samples() -> list[str]:
    """The guide's Python code blocks, in order; a failure when the guide is
    not beside the repository (never a skip: these tests are what shows the
    guide's code runs)."""
    if not GUIDE.is_file():
        pytest.fail(f"the websockets guide is not at {GUIDE} (../shared/reference/)")
    text = GUIDE.read_text(encoding="utf-8", errors="replace")
    return re.findall(r"```(?:python|py)\n(.*?)```", text, flags=re.DOTALL)


def adapt(sample: str, ports: dict[int, int] | None = None) -> str:
    """The one change a user makes, and the ports moved to free ones."""
    code = sample.replace("import websockets", "import asgiws as websockets")
    for fixed, free in (ports or {}).items():
        code = code.replace(str(fixed), str(free))
    return code


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Program:
    """A sample running as a script, with its output collected."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def finish(self, stdin: bytes | None = None) -> tuple[int, str, str]:
        out, err = await asyncio.wait_for(self.process.communicate(stdin), TIMEOUT)
        assert self.process.returncode is not None
        return self.process.returncode, out.decode(), err.decode()


async def start(path: Path, *, stdin: bool = False) -> Program:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(path),
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=path.parent,
    )
    return Program(process)


async def wait_listening(port: int, program: Program) -> None:
    """Until the sample accepts connections (bounded), or fail with its output."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while loop.time() < deadline:
        if program.process.returncode is not None:
            _, out, err = await program.finish()
            pytest.fail(f"the sample exited early:\n{out}\n{err}")
        try:
            _, writer = await asyncio.open_connection("localhost", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    pytest.fail(f"the sample never listened on port {port}")


@asynccontextmanager
async def running(path: Path, port: int) -> AsyncIterator[Program]:
    program = await start(path)
    try:
        await wait_listening(port, program)
        yield program
    finally:
        if program.process.returncode is None:
            program.process.kill()
            await program.process.wait()


def write(tmp_path: Path, name: str, code: str) -> Path:
    path = tmp_path / name
    path.write_text(code, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def samples() -> list[str]:
    found = guide_samples()
    assert len(found) == EXPECTED_BLOCKS, "the guide changed: review FRAGMENTS"
    return found


def test_every_block_is_run_or_listed_as_a_fragment(samples: list[str]) -> None:
    run = {4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16, 18, 20}
    assert run | set(FRAGMENTS) == set(range(len(samples)))
    assert not run & set(FRAGMENTS)
    # The fragments cannot run alone: a signature, a top-level await or async
    # for do not even compile; the others are named with what breaks them.
    for index in FRAGMENTS:
        code = adapt(samples[index])
        if index in (0, 1, 2, 17, 19):
            with pytest.raises(SyntaxError):
                compile(code, f"block {index}", "exec")
        else:
            compile(code, f"block {index}", "exec")


async def greets_ann(client: Path) -> None:
    """The guide's client asks for a name on stdin and prints the greeting."""
    code, out, err = await (await start(client, stdin=True)).finish(b"Ann\n")
    assert code == 0, err
    assert out == "What's your name? >>> Ann\n<<< Hello Ann!\n"


# --- Hello World: server (block 4) with the client (block 5) ----------------------------


async def test_hello_server_with_the_hello_client(samples: list[str], tmp_path: Path) -> None:
    port = free_port()
    server = write(tmp_path, "server.py", adapt(samples[4], {8765: port}))
    client = write(tmp_path, "client.py", adapt(samples[5], {8765: port}))
    async with running(server, port) as program:
        await greets_ann(client)
        # And a websockets client: the server greets it the same way.
        async with peer_connect(f"ws://localhost:{port}") as ws:
            await ws.send("Bob")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "Hello Bob!"
            with pytest.raises(PeerClosedOK):
                await asyncio.wait_for(ws.recv(), TIMEOUT)  # the handler returned
        program.process.send_signal(signal.SIGINT)
        _, server_out, _ = await program.finish()
    assert "<<< Ann\n>>> Hello Ann!\n<<< Bob\n>>> Hello Bob!\n" in server_out


# --- wss: server_secure.py (block 6) with client_secure.py (block 7) ---------------------


async def test_secure_server_with_the_secure_client(samples: list[str], tmp_path: Path) -> None:
    # localhost.pem beside the scripts, as the guide says: the key and the
    # certificate for the server, the certificate the client trusts.
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
    pem = cert.private_key_and_cert_chain_pem.bytes() + ca.cert_pem.bytes()
    (tmp_path / "localhost.pem").write_bytes(pem)
    port = free_port()
    server = write(tmp_path, "server_secure.py", adapt(samples[6], {8765: port}))
    client = write(tmp_path, "client_secure.py", adapt(samples[7], {8765: port}))
    async with running(server, port) as program:
        await greets_ann(client)
        # A plain ws:// client is not served: the port speaks TLS only.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ca.configure_trust(context)
        async with peer_connect(f"wss://localhost:{port}", ssl=context) as ws:
            await ws.send("Bob")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "Hello Bob!"
        program.process.send_signal(signal.SIGINT)
        await program.finish()


# --- show_time.py (block 8) and show_time_2.py with broadcast (block 9) ---------------------


def is_utc_timestamp(message: Any) -> bool:
    pattern = r"\d{4}-\d\d-\d\dT[\d:.]+Z"
    return isinstance(message, str) and re.fullmatch(pattern, message) is not None


async def test_show_time_sends_utc_timestamps(samples: list[str], tmp_path: Path) -> None:
    port = free_port()
    server = write(tmp_path, "show_time.py", adapt(samples[8], {5678: port}))
    async with running(server, port), peer_connect(f"ws://127.0.0.1:{port}/") as ws:
        first = await asyncio.wait_for(ws.recv(), TIMEOUT)
        second = await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert is_utc_timestamp(first) and is_utc_timestamp(second)
        assert str(first) < str(second)


async def test_show_time_2_broadcasts_one_timestamp_to_every_client(
    samples: list[str], tmp_path: Path
) -> None:
    port = free_port()
    server = write(tmp_path, "show_time_2.py", adapt(samples[9], {5678: port}))
    async with (
        running(server, port),
        peer_connect(f"ws://127.0.0.1:{port}/") as one,
        peer_connect(f"ws://127.0.0.1:{port}/") as two,
    ):
        # Both registered once each has received a message; from then on
        # every broadcast reaches both with the same timestamp.
        await asyncio.wait_for(one.recv(), TIMEOUT)
        await asyncio.wait_for(two.recv(), TIMEOUT)
        a = await asyncio.wait_for(one.recv(), TIMEOUT)
        b = await asyncio.wait_for(two.recv(), TIMEOUT)
        assert is_utc_timestamp(a) and a == b


# --- counter.py (block 10): the state shared through broadcast ---------------------------


async def test_counter_shares_value_and_user_count(samples: list[str], tmp_path: Path) -> None:
    port = free_port()
    server = write(tmp_path, "counter.py", adapt(samples[10], {6789: port}))
    async with running(server, port) as program:
        async with peer_connect(f"ws://127.0.0.1:{port}/") as one:
            assert json.loads(await one.recv()) == {"type": "users", "count": 1}
            assert json.loads(await one.recv()) == {"type": "value", "value": 0}
            async with peer_connect(f"ws://127.0.0.1:{port}/") as two:
                assert json.loads(await one.recv()) == {"type": "users", "count": 2}
                assert json.loads(await two.recv()) == {"type": "users", "count": 2}
                assert json.loads(await two.recv()) == {"type": "value", "value": 0}
                await two.send(json.dumps({"action": "plus"}))
                for ws in (one, two):
                    assert json.loads(await ws.recv()) == {"type": "value", "value": 1}
                await one.send(json.dumps({"action": "jump"}))  # logged, not answered
                await one.send(json.dumps({"action": "minus"}))
                for ws in (one, two):
                    assert json.loads(await ws.recv()) == {"type": "value", "value": 0}
            assert json.loads(await one.recv()) == {"type": "users", "count": 1}
        program.process.send_signal(signal.SIGINT)
        _, _, err = await program.finish()
    assert "ERROR:root:unsupported event: {'action': 'jump'}" in err


# --- the patterns: consumer (block 11) and producer (block 12) ----------------------------


async def test_consumer_and_producer_handlers(samples: list[str]) -> None:
    import asgiws

    namespace: dict[str, Any] = {"asyncio": asyncio}
    exec(adapt(samples[11]), namespace)  # consumer, consumer_handler(websocket, path)
    exec(adapt(samples[12]), namespace)  # producer, producer_handler(websocket)
    consumed: list[Any] = []

    async def consumer(message: Any) -> None:
        consumed.append(message)

    namespace["consumer"] = consumer  # the sample's sleeps 1 s and prints
    async with (
        asgiws.serve(namespace["consumer_handler"], "127.0.0.1", 0) as consuming,
        asgiws.serve(namespace["producer_handler"], "127.0.0.1", 0) as producing,
    ):
        consumer_port = consuming.sockets[0].getsockname()[1]
        producer_port = producing.sockets[0].getsockname()[1]
        async with peer_connect(f"ws://127.0.0.1:{consumer_port}/") as ws:
            await ws.send("one")
            await ws.send(b"two")
        async with peer_connect(f"ws://127.0.0.1:{producer_port}/") as ws:
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "message1"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while len(consumed) < 2 and loop.time() < deadline:
            await asyncio.sleep(0.01)
    assert consumed == ["one", b"two"]


# --- extra arguments with functools.partial (block 15) ------------------------------------


async def test_partial_handler_sample_starts_when_awaited(samples: list[str]) -> None:
    port = free_port()
    namespace: dict[str, Any] = {}
    exec(adapt(samples[15], {8765: port}), namespace)
    server = await namespace["start_server"]  # websockets 10: awaiting serve() starts it
    try:
        async with peer_connect(f"ws://127.0.0.1:{port}/") as ws:
            with pytest.raises(PeerClosedOK):
                await asyncio.wait_for(ws.recv(), TIMEOUT)  # handler(ws, extra_argument) ran
            assert ws.close_code == 1000
    finally:
        server.close()
        await server.wait_closed()


# --- SIGTERM: the server (block 16) and the client (block 18) -----------------------------


async def test_server_stops_on_sigterm(samples: list[str], tmp_path: Path) -> None:
    port = free_port()
    server = write(tmp_path, "server_sigterm.py", adapt(samples[16], {8765: port}))
    async with running(server, port) as program, peer_connect(f"ws://localhost:{port}") as ws:
        await ws.send("echo")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "echo"
        program.process.send_signal(signal.SIGTERM)
        code, _, err = await program.finish()
        assert code == 0, err
        with pytest.raises(PeerClosedOK):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert ws.close_code == 1001  # going away, as websockets closes on exit


async def test_client_closes_on_sigterm(samples: list[str], tmp_path: Path) -> None:
    import asgiws

    closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
    connected = asyncio.Event()

    async def handler(websocket: asgiws.WebSocketServerProtocol) -> None:
        connected.set()
        await websocket.wait_closed()
        closed.set_result(websocket.close_code)

    async with asgiws.serve(handler, "localhost", 0, family=socket.AF_INET) as server:
        port = server.sockets[0].getsockname()[1]
        client = write(tmp_path, "client_sigterm.py", adapt(samples[18], {8765: port}))
        program = await start(client)
        await asyncio.wait_for(connected.wait(), TIMEOUT)
        await catches_sigterm(program.process.pid)
        program.process.send_signal(signal.SIGTERM)
        code, _, err = await program.finish()
        assert code == 0, err
        assert await asyncio.wait_for(closed, TIMEOUT) == 1000


async def catches_sigterm(pid: int) -> None:
    """Until the process has installed its SIGTERM handler (Linux: the
    SigCgt mask of /proc/PID/status), bounded."""
    status = Path(f"/proc/{pid}/status")
    # Linux is the platform these tests run on: without /proc this test
    # cannot tell when the handler is in place, which is a failure, not a skip.
    if not status.exists():
        pytest.fail(f"{status} is missing: it shows when the sample's signal handler is installed")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while loop.time() < deadline:
        caught = next(
            line.split()[1] for line in status.read_text().splitlines()
            if line.startswith("SigCgt:")
        )
        if int(caught, 16) & (1 << (signal.SIGTERM - 1)):
            return
        await asyncio.sleep(0.01)
    pytest.fail("the client sample never installed its SIGTERM handler")


# --- debug logging (block 20) ---------------------------------------------------------------


async def test_logging_sample_shows_the_connection_lifecycle(
    samples: list[str], tmp_path: Path
) -> None:
    port = free_port()
    # The guide's logging lines, its Hello server and client in one program.
    logging_code = adapt(samples[20]).replace("'websockets'", "'asgiws'")
    program_code = "\n".join(
        [
            logging_code,
            adapt(samples[4], {8765: port}).replace('if __name__ == "__main__":', "if False:"),
            "async def run_both():",
            f"    async with websockets.serve(handler, 'localhost', {port}):",
            f"        async with websockets.connect('ws://localhost:{port}') as ws:",
            "            await ws.send('Ann')",
            "            await ws.recv()",
            "asyncio.run(run_both())",
        ]
    )
    path = write(tmp_path, "logging_sample.py", program_code)
    code, out, err = await (await start(path)).finish()
    assert code == 0, err
    lines = err.splitlines()
    assert f"server listening on 127.0.0.1:{port}" in lines
    assert lines.count("connection open") == 1  # the server side's line
    assert any(line.startswith("connection open: ws://localhost") for line in lines)
    assert sum(line.startswith("connection closed: ") for line in lines) == 2
    assert "server closing" in lines and "server closed" in lines
    assert "<<< Ann" in out


