"""The engine's state: the transition table (our side, the peer's side),
what `should_close_transport()` and `state` derive from it, `fail()`,
the close frame owed after a protocol error, and `rcvd_then_sent`."""

from __future__ import annotations

import struct

import pytest

from asgiws.websocket import (
    BytesMessage,
    ClientEngine,
    Close,
    CloseReceived,
    ConnectionFailed,
    EngineState,
    InvalidState,
    OurState,
    ServerEngine,
    TextMessage,
    TheirState,
)
from asgiws.websocket.connection import (
    TRANSITIONS,
    Engine,
    Trigger,
    closes_transport,
    coarse_state,
)

MASK = b"\x01\x02\x03\x04"
Us, Peer = OurState, TheirState


def masked(b0: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    head = bytes((b0, 0x80 | n)) if n < 126 else struct.pack(">BBH", b0, 0x80 | 126, n)
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def close_frame(code: int, reason: bytes = b"") -> bytes:
    return masked(0x88, code.to_bytes(2, "big") + reason)


def sides(engine: Engine) -> tuple[OurState, TheirState]:
    return engine.our_state, engine.their_state


def coarse(engine: Engine) -> EngineState:
    """The state read afresh (a plain `engine.state` stays narrowed by an earlier assert)."""
    return engine.state


def closed_by_server(engine: Engine) -> bytes:
    """The close frame the engine queued, as a client reads it (unmasked)."""
    return b"".join(engine.data_to_send())


# --- the table ----------------------------------------------------------------------


def reachable() -> set[tuple[OurState, TheirState]]:
    seen = {(Us.OPEN, Peer.MESSAGES)}
    todo = list(seen)
    while todo:
        ours, theirs = todo.pop()
        for ours_row, theirs_row in TRANSITIONS.values():
            if ours in ours_row and theirs in theirs_row:
                state = (ours_row[ours], theirs_row[theirs])
                if state not in seen:
                    seen.add(state)
                    todo.append(state)
    return seen


# Every state the table can reach, with Engine.state and whether a server
# closes TCP (a client closes only after EOF).
EXPECTED = {
    (Us.OPEN, Peer.MESSAGES): (EngineState.OPEN, False),
    (Us.CLOSE_SENT, Peer.MESSAGES): (EngineState.CLOSING, False),
    (Us.CLOSE_OWED, Peer.DISCARDING): (EngineState.OPEN, False),
    (Us.CLOSE_OWED, Peer.UNREADABLE): (EngineState.OPEN, False),
    (Us.CLOSE_OWED, Peer.CLOSE_RECEIVED): (EngineState.OPEN, False),
    (Us.CLOSE_SENT, Peer.DISCARDING): (EngineState.CLOSING, False),
    (Us.CLOSE_SENT, Peer.UNREADABLE): (EngineState.CLOSING, True),
    (Us.CLOSE_SENT, Peer.CLOSE_RECEIVED): (EngineState.CLOSED, True),
    (Us.CLOSE_SENT, Peer.EOF): (EngineState.CLOSED, True),
    (Us.ENDED, Peer.EOF): (EngineState.CLOSED, True),
}


def test_the_table_reaches_exactly_the_documented_states() -> None:
    assert reachable() == set(EXPECTED)


@pytest.mark.parametrize("ours, theirs", sorted(EXPECTED, key=str))
def test_state_and_transport_close_follow_from_the_state(
    ours: OurState, theirs: TheirState
) -> None:
    coarse, server_closes = EXPECTED[ours, theirs]
    assert coarse_state(ours, theirs) is coarse
    assert closes_transport(ours, theirs, is_server=True) is server_closes
    assert closes_transport(ours, theirs, is_server=False) is (theirs is Peer.EOF)


def test_the_engine_fires_no_trigger_the_table_lacks() -> None:
    """Peer-side triggers fire only while the peer's bytes are read; the
    table must hold them for every such reachable state (a missing pair
    would surface as InvalidState from receive_data)."""
    for ours, theirs in reachable():
        if theirs in (Peer.MESSAGES, Peer.DISCARDING):
            for trigger in (Trigger.RECEIVE_CLOSE, Trigger.FRAMING_ERROR):
                ours_row, theirs_row = TRANSITIONS[trigger]
                assert ours in ours_row and theirs in theirs_row, (trigger, ours, theirs)
        if theirs is Peer.MESSAGES:
            ours_row, theirs_row = TRANSITIONS[Trigger.PROTOCOL_ERROR]
            assert ours in ours_row and theirs in theirs_row
        if theirs is not Peer.EOF:
            ours_row, theirs_row = TRANSITIONS[Trigger.EOF]
            assert ours in ours_row and theirs in theirs_row
        ours_row, theirs_row = TRANSITIONS[Trigger.FAIL]
        assert ours in ours_row and theirs in theirs_row


# --- a receive-side protocol error: the close frame is owed ---------------------------


def test_a_data_error_owes_the_close_and_discards_input() -> None:
    server = ServerEngine()
    events = server.receive_data(masked(0x81, b"one") + masked(0x81, b"\xff"))
    assert events == [TextMessage("one"), ConnectionFailed(1007, "invalid UTF-8 in text message")]
    assert sides(server) == (Us.CLOSE_OWED, Peer.DISCARDING)
    assert server.failure == Close(1007, "invalid UTF-8 in text message")
    assert server.data_to_send() == []  # owed, not queued
    assert coarse(server) is EngineState.OPEN and not server.should_close_transport()
    assert server.send_text("reply to one")  # replies to earlier messages may still go out
    assert server.receive_data(masked(0x89, b"ping") + masked(0x82, b"x")) == []
    assert server.data_to_send() == []  # no pong while discarding


def test_an_unmasked_frame_owes_the_close_and_leaves_the_stream_unreadable() -> None:
    server = ServerEngine()
    events = server.receive_data(b"\x81\x01x")
    assert events == [ConnectionFailed(1002, "unmasked frame from client")]
    assert sides(server) == (Us.CLOSE_OWED, Peer.UNREADABLE)
    assert server.data_to_send() == [] and server.failure is not None
    assert server.receive_data(close_frame(1000)) == []  # nothing counts any more
    server.send_close(server.failure.code, server.failure.reason)
    assert sides(server) == (Us.CLOSE_SENT, Peer.UNREADABLE)
    assert server.failure is None
    assert coarse(server) is EngineState.CLOSING and server.should_close_transport()


def test_a_client_waits_for_the_servers_tcp_close_even_when_unreadable() -> None:
    client = ClientEngine()
    client.receive_data(masked(0x81, b"x"))  # masked frame from a server
    failure = client.failure
    assert failure is not None and failure.code == 1002
    client.send_close(failure.code, failure.reason)
    assert sides(client) == (Us.CLOSE_SENT, Peer.UNREADABLE)
    assert not client.should_close_transport()
    assert client.receive_eof() == []
    assert client.should_close_transport()


def test_the_peers_close_while_the_close_is_owed_completes_the_exchange() -> None:
    server = ServerEngine()
    server.receive_data(masked(0x81, b"\xff"))
    assert server.receive_data(close_frame(1000, b"bye")) == []  # not reported when discarding
    assert sides(server) == (Us.CLOSE_OWED, Peer.CLOSE_RECEIVED)
    assert server.close_received == Close(1000, "bye")
    assert server.data_to_send() == []  # no echo: our close is the failure's
    assert coarse(server) is EngineState.OPEN and not server.should_close_transport()
    failure = server.failure
    assert failure is not None
    server.send_close(failure.code, failure.reason)
    assert coarse(server) is EngineState.CLOSED and server.should_close_transport()
    assert server.rcvd_then_sent is True


def test_an_invalid_close_while_discarding_still_ends_the_peers_stream() -> None:
    server = ServerEngine()
    server.receive_data(masked(0x81, b"\xff"))
    failure = server.failure
    assert failure is not None
    server.send_close(failure.code, failure.reason)
    assert server.receive_data(close_frame(999)) == []  # no second ConnectionFailed
    assert sides(server) == (Us.CLOSE_SENT, Peer.CLOSE_RECEIVED)
    assert server.close_received is None and server.close_code == 1006
    assert server.should_close_transport()


def test_a_framing_error_while_discarding_makes_the_stream_unreadable() -> None:
    server = ServerEngine()
    server.receive_data(masked(0x81, b"\xff"))
    assert server.receive_data(masked(0x83)) == []  # unknown opcode: no second event
    assert sides(server) == (Us.CLOSE_OWED, Peer.UNREADABLE)


def test_fragments_of_the_failed_message_are_dropped_not_refused() -> None:
    """While discarding, data frames are checked as frames only: the rest of
    the message that failed must not count as a second error."""
    server = ServerEngine()
    server.receive_data(masked(0x01, b"\xff"))  # fails at the first fragment
    assert server.receive_data(masked(0x00, b"more") + masked(0x80, b"end")) == []
    assert sides(server) == (Us.CLOSE_OWED, Peer.DISCARDING)
    server.receive_data(close_frame(1000))
    assert sides(server) == (Us.CLOSE_OWED, Peer.CLOSE_RECEIVED)


def test_eof_drops_the_owed_close() -> None:
    server = ServerEngine()
    server.receive_data(masked(0x81, b"\xff"))
    assert server.receive_eof() == []  # the failure was reported already
    assert sides(server) == (Us.ENDED, Peer.EOF)
    assert server.failure is None and server.state is EngineState.CLOSED
    with pytest.raises(InvalidState):
        server.send_close(1002)
    with pytest.raises(InvalidState):
        server.send_text("too late")


# --- fail(): failing from our side ----------------------------------------------------


def test_fail_queues_our_close_and_discards_input() -> None:
    server = ServerEngine()
    server.fail(1011, "keepalive ping timeout")
    assert closed_by_server(server) == b"\x88\x18\x03\xf3keepalive ping timeout"
    assert sides(server) == (Us.CLOSE_SENT, Peer.DISCARDING)
    assert server.close_sent == Close(1011, "keepalive ping timeout")
    assert coarse(server) is EngineState.CLOSING and not server.should_close_transport()
    assert server.receive_data(masked(0x81, b"late") + masked(0x89, b"p")) == []
    assert server.data_to_send() == []  # no pong
    assert server.receive_data(close_frame(1000)) == []
    assert server.close_received == Close(1000, "")
    assert coarse(server) is EngineState.CLOSED and server.should_close_transport()
    assert server.rcvd_then_sent is False


def test_a_failing_client_waits_for_the_servers_tcp_close() -> None:
    client = ClientEngine()
    client.fail(1011)
    assert client.data_to_send()
    client.receive_data(b"\x88\x02\x03\xe8")
    assert coarse(client) is EngineState.CLOSED and not client.should_close_transport()
    client.receive_eof()
    assert client.should_close_transport()


def test_fail_sends_the_close_a_protocol_error_left_owed() -> None:
    server = ServerEngine()
    server.receive_data(masked(0x81, b"\xff"))
    server.fail(1011, "timeout")  # the first failure names the cause
    assert closed_by_server(server)[2:4] == (1007).to_bytes(2, "big")
    assert server.close_sent is not None and server.close_sent.code == 1007
    assert sides(server) == (Us.CLOSE_SENT, Peer.DISCARDING)


def test_fail_while_closing_sends_nothing_more_and_drops_messages() -> None:
    server = ServerEngine()
    server.send_close(1001)
    assert server.receive_data(masked(0x81, b"still read")) == [TextMessage("still read")]
    server.fail(1011)
    assert server.data_to_send() == []
    assert server.receive_data(masked(0x81, b"dropped")) == []
    assert sides(server) == (Us.CLOSE_SENT, Peer.DISCARDING)


def test_fail_after_the_end_does_nothing() -> None:
    server = ServerEngine()
    server.receive_eof()
    server.fail(1011)
    assert server.data_to_send() == [] and sides(server) == (Us.ENDED, Peer.EOF)
    server = ServerEngine()
    server.receive_data(close_frame(1000))
    server.data_to_send()
    server.fail(1011)
    assert server.data_to_send() == [] and server.state is EngineState.CLOSED


def test_fail_checks_the_code_and_fits_the_reason() -> None:
    server = ServerEngine()
    with pytest.raises(ValueError):
        server.fail(1006)
    assert sides(server) == (Us.OPEN, Peer.MESSAGES) and server.data_to_send() == []
    server.fail(1011, "é" * 100)
    frame = closed_by_server(server)
    assert frame[1] <= 125
    assert frame[4:].decode() == "é" * 61


# --- who closed first -------------------------------------------------------------------


def test_rcvd_then_sent() -> None:
    server = ServerEngine()
    assert server.rcvd_then_sent is None
    server.receive_data(close_frame(1000))  # echoed at once
    assert server.rcvd_then_sent is True
    server = ServerEngine()
    server.send_close(1000)
    assert server.rcvd_then_sent is False
    server.receive_data(close_frame(1000))
    assert server.rcvd_then_sent is False
    server = ServerEngine()
    server.receive_data(close_frame(999))  # invalid: does not count as received
    assert server.rcvd_then_sent is None and server.close_received is None
    failure = server.failure
    assert failure is not None
    server.send_close(failure.code, failure.reason)
    assert server.rcvd_then_sent is False


def test_messages_before_the_close_are_delivered_while_closing() -> None:
    server = ServerEngine()
    server.send_close(1000)
    events = server.receive_data(masked(0x82, b"x") + close_frame(1000))
    assert events == [BytesMessage(b"x"), CloseReceived(1000, "")]
    assert sides(server) == (Us.CLOSE_SENT, Peer.CLOSE_RECEIVED)
