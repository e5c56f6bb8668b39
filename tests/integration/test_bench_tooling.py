"""The benchmark tooling: the cost pass's rate rule and cells, the paced load
generator against a real server, and the non-ASGI peer servers.

The load generator runs as its own process against servers started the way
benchmarks/run.py starts them (benchmarks.servers), with short windows: these
tests check behaviour (paced rates are met, an impossible rate is reported as
saturated, the peers serve every WebSocket scenario), not speed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import cost, loadgen, send_floor
from benchmarks.servers import REPO, RunningServer, free_port, http_ok, spec_named

LOADGEN = REPO / "benchmarks" / "loadgen.py"
SHORT = ("--duration", "0.6", "--warmup", "0.2")


def run_loadgen(server: RunningServer, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            str(LOADGEN),
            *args,
            "--port",
            str(server.port),
            "--server-pid",
            str(server.pid),
            *SHORT,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.stdout.strip(), done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in result, result
    return result


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Any]:
    servers: list[RunningServer] = []

    def start(name: str) -> RunningServer:
        server = RunningServer(spec_named(name), free_port(), tmp_path / f"{name}.log")
        servers.append(server)
        server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()


# ---------------------------------------------------------------- rate rule


def test_rate_base_is_the_slowest_server_within_a_third_of_the_fastest() -> None:
    plan = cost.rate_plan({"fast": 100_000.0, "middle": 40_000.0, "daphne": 20_000.0})
    assert plan is not None
    assert plan.base_server == "middle"
    assert plan.excluded == ("daphne",)
    assert plan.rates == pytest.approx((10_000.0, 20_000.0, 30_000.0))
    # At exactly the floor the server still sets the base.
    edge = cost.rate_plan({"fast": 90_000.0, "slow": 30_000.0})
    assert edge is not None and edge.base_server == "slow" and edge.excluded == ()
    assert cost.rate_plan({}) is None


def test_only_servers_with_a_throughput_number_are_paced() -> None:
    throughput: dict[str, cost.Rounds] = {
        "picows": [{"ws_deflate_on": {"value": None, "note": "no deflate"}}],
        "asgiws-fast": [{"ws_deflate_on": {"value": 8_000.0}}],
    }
    plans = cost.plans(throughput, ["ws_deflate_on"])
    assert plans["ws_deflate_on"].base_server == "asgiws-fast"
    assert cost.served(throughput["picows"], plans) == []
    assert cost.served(throughput["asgiws-fast"], plans) == ["ws_deflate_on"]


def level(us: float, saturated: bool = False) -> dict[str, Any]:
    return {"saturated": saturated, "server_us_per_unit": us, "achieved": 1000.0}


def test_a_cell_is_saturated_when_most_rounds_were_else_the_median_of_the_rest() -> None:
    rounds = [{"levels": [level(10.0)]}, {"levels": [level(30.0, True)]}, {"levels": [level(12.0)]}]
    entry = cost.cell(rounds, 0)
    assert entry is not None
    assert not entry["saturated"]
    assert entry["us_per_unit"] == 11.0
    assert "[1/3 sat.]" in cost.format_cell(entry)
    mostly = cost.cell(
        [{"levels": [level(1.0, True)]}, {"levels": [level(2.0, True)]}, {"levels": [level(3.0)]}],
        0,
    )
    assert mostly is not None and mostly["saturated"] and mostly["us_per_unit"] is None
    assert cost.format_cell(mostly).startswith("saturated")


def test_cost_ratios_are_baseline_over_server() -> None:
    table = cost.cells(
        {
            "uvicorn-fast": [{"ws_echo_1k": {"levels": [level(20.0)] * 3}}],
            "asgiws-fast": [{"ws_echo_1k": {"levels": [level(10.0)] * 3}}],
        },
        "uvicorn-fast",
    )
    assert table["asgiws-fast"]["ws_echo_1k"][0]["ratio"] == 2.0
    assert table["asgiws-fast"]["ws_echo_small"] == [None, None, None]


def test_baseline_rev_compares_cost_per_unit_with_saturated_rounds_left_out() -> None:
    from benchmarks import run

    def rounds(*us: float | None) -> cost.Rounds:
        # A saturated round's µs (an overloaded server) must not count.
        return [
            {"ws_echo_1k": {"levels": [level(u or 1000.0, saturated=u is None)] * 3}} for u in us
        ]

    row = next(m for m in run.COST_ROWS if m.key == "ws_echo_1k_us@50%")
    cheaper = run.against_baseline(
        row, run.cost_rounds(rounds(10.0, None)), run.cost_rounds(rounds(20.0, 20.0))
    )
    assert cheaper["ratio"] == 2.0 and not cheaper["worse"]
    dearer = run.against_baseline(
        row, run.cost_rounds(rounds(12.0, 12.0)), run.cost_rounds(rounds(10.0, 10.0))
    )
    assert dearer["worse"]


def test_runs_go_scenario_by_scenario_with_the_servers_reversed_in_even_rounds() -> None:
    from benchmarks import run

    specs = [spec_named(n) for n in ("asgiws-fast", "uvicorn-fast", "granian")]
    order = [(i, sc, spec.name) for i, sc, spec in run.schedule(specs, ["a", "b"], 3)]
    # Every measurement of a scenario before the next scenario: the two numbers
    # a ratio compares are never a whole round of other scenarios apart.
    assert [sc for _, sc, _ in order] == ["a"] * 9 + ["b"] * 9
    forward = ["asgiws-fast", "uvicorn-fast", "granian"]
    assert [name for _, _, name in order[:9]] == forward + forward[::-1] + forward
    assert [i for i, _, _ in order[:9]] == [0] * 3 + [1] * 3 + [2] * 3


def test_a_connection_the_server_closed_first_counts_as_time_wait() -> None:
    import socket

    from benchmarks import run

    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        accepted.close()  # the server side closes first, as after a closing handshake
        assert client.recv(1) == b""
        client.close()
    # The accepted side now waits out TIME_WAIT for 60 s (others' may expire
    # meanwhile, so only this one is certain): the count settle_time_wait() polls.
    assert run.time_wait_sockets() >= 1
    assert run.settle_time_wait(limit=10**6, timeout=0.0) >= 1


# ---------------------------------------------------------------- paced load


@pytest.mark.parametrize("scenario", ["ws_echo_1k", "http_hello", "ws_handshake"])
def test_paced_rate_is_met_and_an_impossible_one_is_saturated(started: Any, scenario: str) -> None:
    server = started("asgiws-fast")
    result = run_loadgen(server, scenario, "--rate", "400", "10000000")
    low, impossible = result["levels"]
    assert low["offered"] == 400
    assert not low["saturated"], result
    assert low["achieved"] == pytest.approx(400, rel=0.1)
    assert low["server_us_per_unit"] > 0
    assert impossible["saturated"]
    assert impossible["missed"] > 0


def test_the_first_rate_gets_the_longer_warm_up_of_a_fresh_server(started: Any) -> None:
    server = started("asgiws-fast")
    began = time.monotonic()
    # SHORT's 0.2 s warm-up for every rate but the first, which gets 1.5 s.
    result = run_loadgen(server, "ws_echo_1k", "--rate", "400", "800", "--first-warmup", "1.5")
    assert [level["warmup_s"] for level in result["levels"]] == [1.5, 0.2]
    assert time.monotonic() - began >= 1.5 + 0.2 + 2 * 0.6


def test_paced_broadcast_counts_deliveries(started: Any) -> None:
    server = started("asgiws-fast")
    # --quick: 200 subscribers; 4,000 deliveries/s are 20 fan-outs a second.
    result = run_loadgen(server, "ws_broadcast", "--quick", "--rate", "4000")
    (only,) = result["levels"]
    assert not only["saturated"]
    assert only["achieved"] == pytest.approx(4000, rel=0.1)
    assert only["p99_ms"] > 0


async def test_the_pacer_keeps_handshakes_within_their_in_flight_bound() -> None:
    # A listener that accepts and never answers: every handshake stays in flight.
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    window = loadgen.Window(paced=True)
    handshakes = loadgen.Handshakes(window, port, limit=3)
    pacer = loadgen.Pacer(1_000_000.0, [handshakes], window)
    task = asyncio.ensure_future(pacer.run())
    deadline = time.monotonic() + 5
    while pacer.missed == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    pacer.running = False
    await task
    try:
        assert pacer.missed > 0
        assert window.fired == 3
        assert handshakes.in_flight == 3
    finally:
        for pending in handshakes.tasks:
            pending.cancel()
        await asyncio.gather(*handshakes.tasks, return_exceptions=True)
        silent.close()
        await silent.wait_closed()


def test_idle_rss_has_no_paced_mode() -> None:
    done = subprocess.run(
        [sys.executable, str(LOADGEN), "ws_idle_rss", "--port", "1", "--rate", "10"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "no paced mode" in done.stderr


# ---------------------------------------------------------------- peer servers


@pytest.mark.parametrize("name", ["websockets", "picows"])
def test_peer_servers_serve_every_websocket_scenario(started: Any, name: str) -> None:
    server = started(name)
    assert not server.spec.http
    assert http_ok(server.port)  # the readiness probe run.py uses
    for scenario in ("ws_echo_small", "ws_echo_1m", "ws_handshake", "ws_deflate_off"):
        assert run_loadgen(server, scenario)["value"] > 0, scenario
    broadcast = run_loadgen(server, "ws_broadcast", "--quick")
    assert broadcast["value"] > 0
    deflate = run_loadgen(server, "ws_deflate_on")
    if name == "websockets":
        assert deflate["value"] > 0
        assert deflate["negotiated"].startswith("permessage-deflate")
    else:
        assert deflate["value"] is None
        assert deflate["note"] == "server does not negotiate deflate"


# ---------------------------------------------------------------- the hub's floor


def floor_cpus() -> tuple[str, str]:
    cpus = sorted(os.sched_getaffinity(0))
    return str(cpus[0]), str(cpus[-1])


def test_send_floor_times_every_record_it_sends(tmp_path: Path) -> None:
    binary = send_floor.build(tmp_path)
    assert binary is not None
    row = send_floor.run(binary, 50, 0.3, 0.1, 100, *floor_cpus())
    assert "error" not in row, row
    assert row["rounds"] == 3
    paced = row["paced"]
    assert paced["server_us_per_delivery"] > 0 and paced["loadgen_us_per_read"] > 0
    # Latencies are times since the round's stamp: positive, ordered, well
    # under the 100 ms between rounds for 50 loopback subscribers.
    assert 0 < paced["p50_ms"] <= paced["p99_ms"] <= paced["max_ms"] < 100


def test_send_floor_says_what_is_wrong_with_its_arguments(tmp_path: Path) -> None:
    binary = send_floor.build(tmp_path)
    assert binary is not None
    done = subprocess.run(
        [str(binary), "10", "2", "100", "2", *floor_cpus()],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "ROUNDS > WARMUP_ROUNDS" in done.stderr
    row = send_floor.run(binary, 0, 0.1, 0.1, 100, *floor_cpus())
    assert "SUBSCRIBERS >= 1" in row["error"][-1]


def test_hub_report_ends_each_size_with_the_floor(tmp_path: Path) -> None:
    from benchmarks import hub

    def paced(us: float, p99: float) -> dict[str, Any]:
        return {
            "paced": {
                "server_us_per_delivery": us,
                "p50_ms": p99 / 2,
                "p99_ms": p99,
                "max_ms": p99 + 1,
            }
        }

    args = argparse.Namespace(
        sizes=[1000, 10000],
        rows=["asgiws-hub"],
        rate=50_000.0,
        sampled=200,
        rounds=3,
        duration=5.0,
    )
    results: dict[str, dict[int, list[dict[str, Any]]]] = {
        "asgiws-hub": {
            size: [
                {
                    **paced(9.0, 90.0),
                    "rate": {"server_us_per_delivery": 10.0},
                    "subscriber_impl": "c",
                }
            ]
            for size in args.sizes
        },
        hub.FLOOR_ROW: {
            1000: [paced(7.0, 9.0)],
            10000: [paced(8.0, 70.0), paced(7.0, 80.0), paced(9.0, 75.0)],
        },
    }
    hub.report(results, args, tmp_path)
    table = (tmp_path / f"hub-{datetime.date.today().isoformat()}.md").read_text().splitlines()
    rows = [
        line
        for line in table
        if line.startswith("| asgiws-hub |") or line.startswith(f"| {hub.FLOOR_ROW} ")
    ]
    header = next(line for line in table if "@ 1 msg / 100 ms" in line)
    # The paced table: each size's rows, then its floor, every row as wide as the header.
    assert [r.split(" | ")[1] for r in rows[-4:]] == ["1,000", "1,000", "10,000", "10,000"]
    assert rows[-1].startswith(f"| {hub.FLOOR_ROW} ")
    assert all(r.count("|") == header.count("|") for r in rows[-4:])
    assert "subscribers counting frames by bytes in C" in table[2]  # not the floor's
    cells = [c.strip() for c in rows[-1].split("|")[1:-1]]
    assert cells[6] == "8.00"  # the median server µs per delivery of three rounds
    assert cells[8:11] == ["37.5", "75.0", "76.0"]  # p50, p99, max medians


# ---------------------------------------------------------------- the handshake floor


def test_handshake_floor_paced_gives_the_rate_cost_and_sleeps_per_handshake() -> None:
    from benchmarks import handshake_floor

    table = handshake_floor.compare(1, 1.0, ["python-floor"], rate=200)
    header, _rule, row = table.splitlines()
    assert "sleeps / handshake" in header
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    name, rate, server_us, user_us, system_us, sleeps, _loadgen = cells
    assert name == "python-floor"
    assert 180 <= float(rate.replace(",", "")) <= 220
    assert float(server_us) > 0
    assert abs(float(user_us) + float(system_us) - float(server_us)) < 0.2
    # At 200 handshakes/s the server idles between arrivals: it sleeps at
    # least once per handshake (each arrives alone), and not more often than
    # a handshake's three reads, accept and write could wake it.
    assert 0.5 <= float(sleeps) <= 6


def test_handshake_floor_says_when_a_paced_rate_saturates() -> None:
    from benchmarks import handshake_floor

    with pytest.raises(RuntimeError, match="python-floor: saturated at 1000000 handshakes/s"):
        handshake_floor.compare(1, 0.5, ["python-floor"], rate=1_000_000)
