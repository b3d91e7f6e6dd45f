"""Contract tests: real WebSocket clients against the server on a loopback port.

Each bad input gets its documented error frame or close code, the offender alone is affected,
and the server carries on. Time in the server is a hand-moved clock; no test measures time.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from signaling_helpers import (
    PATHS,
    ROOM,
    TEST_CONFIG,
    Client,
    join,
    peer_of,
    running,
    token,
)

from signaling.protocol import MAX_MESSAGE_BYTES
from tests.helpers import MonotonicClock


async def test_two_participants_meet_with_opposite_roles_and_relay_offer_answer() -> None:
    async with running() as srv:
        clin, welcome_c = await join(srv.url, "u-clin")
        assert welcome_c["peers"] == []
        assert welcome_c["limits"]["max_message_bytes"] == MAX_MESSAGE_BYTES
        spec, welcome_s = await join(srv.url, "u-spec", role="specialist")
        [seen_by_spec] = welcome_s["peers"]
        assert seen_by_spec["participant"] == "u-clin"
        assert seen_by_spec["polite"] is True  # the newcomer is polite
        joined = await clin.expect("peer-joined", rejoined=False)
        assert peer_of(joined)["participant"] == "u-spec"
        assert peer_of(joined)["polite"] is False

        rid = await spec.send(type="offer", to="u-clin", sdp="v=0 offer")
        await spec.expect("ack", rid=rid)
        offer = await clin.expect("offer", sdp="v=0 offer")
        assert offer["from"] == "u-spec"
        assert "to" not in offer
        assert "rid" not in offer
        rid = await clin.send(type="answer", sdp="v=0 answer")  # no "to": everyone else
        await clin.expect("ack", rid=rid)
        await spec.expect("answer", sdp="v=0 answer")
        await spec.send(type="candidate", to="u-clin", candidate=None)
        end = await clin.expect("candidate")
        assert end["candidate"] is None
        assert await srv.event_kinds(2) == [("joined", "u-clin"), ("joined", "u-spec")]


async def test_no_token_or_no_hello_is_refused() -> None:
    config = replace(TEST_CONFIG, hello_timeout_s=0.2)
    async with running(config) as srv:
        missing = await Client.connect(srv.url)
        await missing.send(type="hello", room=ROOM)
        assert await missing.refused("bad_message") == 4400

        not_hello = await Client.connect(srv.url)
        await not_hello.send(type="offer", to="x", sdp="v=0")
        assert await not_hello.refused("not_authenticated") == 4400

        silent = await Client.connect(srv.url)
        assert await silent.refused("timeout") == 4408

        forged = await Client.connect(srv.url)
        await forged.send(type="hello", room=ROOM, token=token("u-1")[:-3] + "abc")
        assert await forged.refused("bad_token") == 4401


async def test_expired_token_is_refused() -> None:
    async with running() as srv:
        client = await Client.connect(srv.url)
        await client.send(type="hello", room=ROOM, token=token("u-1", now=time.time() - 120))
        assert await client.refused("token_expired") == 4401


async def test_reused_token_is_refused() -> None:
    async with running() as srv:
        tok = token("u-1")
        first = await Client.connect(srv.url)
        await first.hello(tok)
        second = await Client.connect(srv.url)
        await second.send(type="hello", room=ROOM, token=tok)
        assert await second.refused("token_reused") == 4401
        await first.roundtrip()  # the legitimate holder is unaffected


async def test_token_for_another_room_is_refused_and_not_used_up() -> None:
    async with running() as srv:
        tok = token("u-1", room="consult-2")
        wrong = await Client.connect(srv.url)
        await wrong.send(type="hello", room=ROOM, token=tok)
        assert await wrong.refused("wrong_room") == 4401
        right = await Client.connect(srv.url)
        await right.hello(tok, room="consult-2")


async def test_full_room_refuses_a_third_participant_and_the_call_goes_on() -> None:
    async with running() as srv:
        clin, _ = await join(srv.url, "u-clin")
        spec, _ = await join(srv.url, "u-spec", role="specialist")
        await clin.expect("peer-joined")
        third = await Client.connect(srv.url)
        await third.send(type="hello", room=ROOM, token=token("u-obs", role="observer"))
        assert await third.refused("room_full") == 4403
        await clin.roundtrip()
        await spec.roundtrip()
        # With an interpreter the consult's tokens say three.
        interp, welcome = await join(
            srv.url, "u-int", room="consult-3", role="interpreter", capacity=3
        )
        assert welcome["peers"] == []
        await interp.roundtrip()


async def test_malformed_json_and_unknown_types_get_error_frames_and_the_socket_lives() -> None:
    async with running() as srv:
        clin, _ = await join(srv.url, "u-clin")
        await clin.send_raw("{not json")
        await clin.expect("error", code="bad_json", fatal=False)
        await clin.send_raw(json.dumps({"type": "shout", "rid": "x1"}))
        await clin.expect("error", code="unknown_type", rid="x1", fatal=False)
        await clin.send_raw(json.dumps({"type": "welcome", "rid": "x2"}))
        await clin.expect("error", code="unknown_type", rid="x2")
        await clin.send(type="offer", rid="x3")
        await clin.expect("error", code="bad_message", rid="x3")
        await clin.send(type="offer", to="u-nobody", sdp="v=0", rid="x4")
        await clin.expect("error", code="unknown_peer", rid="x4")
        tok = token("u-clin")
        await clin.send(type="hello", room=ROOM, token=tok, rid="x5")
        await clin.expect("error", code="already_joined", rid="x5", fatal=False)
        await clin.roundtrip()

        before = await Client.connect(srv.url)
        await before.send_raw("[1, 2")
        assert await before.refused("bad_json") == 4400


async def test_oversize_and_binary_frames_close_the_offender_only() -> None:
    async with running() as srv:
        clin, _ = await join(srv.url, "u-clin")
        spec, _ = await join(srv.url, "u-spec", role="specialist")
        await clin.expect("peer-joined")
        await spec.send_raw(json.dumps({"type": "offer", "sdp": "x" * MAX_MESSAGE_BYTES}))
        assert await spec.closed() == 1009
        update = await clin.expect("peer-updated")
        assert peer_of(update)["state"] == "reconnecting"
        await clin.roundtrip()

        other, _ = await join(srv.url, "u-b", room="consult-9")
        await other.send_raw(b"\x00binary")
        assert await other.refused("bad_message") == 1003


async def test_a_flood_is_rate_limited_then_closed_and_others_carry_on() -> None:
    clock = MonotonicClock()  # frozen: the bucket never refills during the test
    config = replace(TEST_CONFIG, rate_per_s=1, burst=5, rate_strikes=3)
    async with running(config, clock=clock) as srv:
        calm, _ = await join(srv.url, "u-calm")
        flood, _ = await join(srv.url, "u-flood", role="specialist")
        await calm.expect("peer-joined")
        for _ in range(5):  # the burst
            await flood.roundtrip()
        for i in range(2):
            await flood.send(type="ping", rid=f"f{i}")
            await flood.expect("error", code="rate_limited", fatal=False, rid=f"f{i}")
        await flood.send(type="ping")
        assert await flood.refused("rate_limited") == 4429
        update = await calm.expect("peer-updated")
        assert peer_of(update)["state"] == "reconnecting"
        await calm.roundtrip()  # same clock, separate bucket


@pytest.mark.parametrize("path", PATHS)
async def test_a_peer_that_never_reads_is_dropped_and_the_room_is_not_stalled(path: str) -> None:
    config = replace(TEST_CONFIG, send_queue=4, rate_per_s=10_000, burst=10_000)
    async with running(config, path=path) as srv:
        sender, _ = await join(srv.url, "u-send")
        # A client whose library stops reading the socket after one queued frame.
        sleeper = await Client.connect(srv.url, max_queue=1)
        await sleeper.hello(token("u-sleep", role="specialist"))
        await sender.expect("peer-joined")
        bystander, _ = await join(srv.url, "u-by", room="consult-elsewhere")

        big = "x" * 60_000
        dropped = False
        for _ in range(2000):  # bounded; a few MB of socket buffers fill long before
            rid = await sender.send(type="offer", to="u-sleep", sdp=big)
            frame = await sender.recv()
            if frame["type"] == "peer-updated":
                assert peer_of(frame)["state"] == "reconnecting"
                await sender.expect("ack", rid=rid)  # the sender itself was never held up
                dropped = True
                break
            assert frame == {"type": "ack", "rid": rid}
        assert dropped, "the slow peer was never dropped"
        await sender.roundtrip()
        await bystander.roundtrip()
        event = await srv.next_event()
        while event.kind != "reconnecting":
            event = await srv.next_event()
        assert event.participant == "u-sleep"


async def test_identity_takeover_replaces_the_old_socket() -> None:
    async with running() as srv:
        clin, _ = await join(srv.url, "u-clin")
        spec, _ = await join(srv.url, "u-spec", role="specialist")
        await clin.expect("peer-joined")
        spec2, welcome = await join(srv.url, "u-spec", role="specialist")
        assert [p["participant"] for p in welcome["peers"]] == ["u-clin"]
        assert welcome["peers"][0]["polite"] is True  # kept its place in the room
        assert await spec.refused("replaced") == 4409
        rejoined = await clin.expect("peer-joined", rejoined=True)
        assert peer_of(rejoined)["participant"] == "u-spec"
        await clin.roundtrip()  # the old socket's end did not announce "reconnecting"
        await clin.send(type="offer", to="u-spec", sdp="v=0")
        await spec2.expect("offer", sdp="v=0")


async def test_resume_replays_what_was_missed_and_the_other_side_sees_only_reconnecting() -> None:
    async with running() as srv:
        clin, _ = await join(srv.url, "u-clin")
        spec, _ = await join(srv.url, "u-spec", role="specialist")
        await clin.expect("peer-joined")
        session, resume_token, last_seq = spec.session, spec.resume_token, spec.last_seq
        spec.drop()
        update = await clin.expect("peer-updated")
        assert peer_of(update)["state"] == "reconnecting"
        rid = await clin.send(type="offer", to="u-spec", sdp="offer while away")
        await clin.expect("ack", rid=rid)
        rid = await clin.send(
            type="candidate",
            to="u-spec",
            candidate={
                "candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host",
                "sdpMid": "0",
                "sdpMLineIndex": 0,
            },
        )
        await clin.expect("ack", rid=rid)

        wrong = await Client.connect(srv.url)
        await wrong.send(type="resume", session=session, resume_token="guess", last_seq=last_seq)
        assert await wrong.refused("resume_failed") == 4404

        back = await Client.connect(srv.url)
        rid = await back.send(
            type="resume", session=session, resume_token=resume_token, last_seq=last_seq
        )
        resumed = await back.expect("resumed", rid=rid, replayed=2)
        assert resumed["resume_token"] != resume_token
        assert [p["participant"] for p in resumed["peers"]] == ["u-clin"]
        await back.expect("offer", sdp="offer while away")
        await back.expect("candidate")
        update = await clin.expect("peer-updated")
        assert peer_of(update)["state"] == "active"
        await back.send(type="answer", to="u-clin", sdp="answer")
        await clin.expect("answer", sdp="answer")
        kinds = await srv.event_kinds(4)
        assert kinds[2:] == [("reconnecting", "u-spec"), ("reconnected", "u-spec")]

        # The old resume token is void after use.
        again = await Client.connect(srv.url)
        await again.send(
            type="resume", session=session, resume_token=resume_token, last_seq=back.last_seq
        )
        assert await again.refused("resume_failed") == 4404


async def test_resume_while_the_old_socket_is_still_open_replaces_it() -> None:
    async with running() as srv:
        clin, _ = await join(srv.url, "u-clin")
        await clin.roundtrip()
        back = await Client.connect(srv.url)
        await back.send(
            type="resume",
            session=clin.session,
            resume_token=clin.resume_token,
            last_seq=clin.last_seq,
        )
        await back.expect("resumed", replayed=0)
        assert await clin.refused("replaced") == 4409
        await back.roundtrip()


async def test_departure_is_announced_only_after_the_grace_period() -> None:
    clock = MonotonicClock()
    async with running(clock=clock) as srv:
        clin, _ = await join(srv.url, "u-clin")
        spec, _ = await join(srv.url, "u-spec", role="specialist")
        await clin.expect("peer-joined")
        spec.drop()
        update = await clin.expect("peer-updated")
        assert peer_of(update)["state"] == "reconnecting"

        clock.advance(TEST_CONFIG.grace_s - 0.1)
        await srv.hub.sweep()
        await clin.roundtrip()  # nothing announced yet

        clock.advance(0.1)
        await srv.hub.sweep()
        await clin.expect("peer-left", participant="u-spec", reason="gone")
        assert await srv.event_kinds(4) == [
            ("joined", "u-clin"),
            ("joined", "u-spec"),
            ("reconnecting", "u-spec"),
            ("left", "u-spec"),
        ]
        # Too late to resume now: a full reconnect is needed.
        late = await Client.connect(srv.url)
        await late.send(
            type="resume",
            session=spec.session,
            resume_token=spec.resume_token,
            last_seq=spec.last_seq,
        )
        assert await late.refused("resume_failed") == 4404

        rid = await clin.send(type="leave")
        await clin.expect("ack", rid=rid)
        assert await clin.closed() == 1000
        assert await srv.event_kinds(2) == [("left", "u-clin"), ("ended", None)]


async def test_leave_is_announced_at_once_and_media_changes_are_shared() -> None:
    async with running() as srv:
        clin, _ = await join(srv.url, "u-clin")
        spec, _ = await join(srv.url, "u-spec", role="specialist")
        await clin.expect("peer-joined")
        rid = await spec.send(type="media", mode="audio-only")
        await spec.expect("ack", rid=rid)
        update = await clin.expect("peer-updated")
        assert peer_of(update)["media"] == "audio-only"
        await spec.send(type="quality", stats={"rtt_ms": 310, "loss": 0.04})
        await spec.send(type="leave")
        await clin.expect("peer-left", participant="u-spec", reason="left")
        kinds = await srv.event_kinds(5)
        assert kinds[2:] == [("media", "u-spec"), ("quality", "u-spec"), ("left", "u-spec")]


async def test_idle_sockets_time_out_into_the_grace_period() -> None:
    async with running(replace(TEST_CONFIG, idle_timeout_s=0.3)) as srv:
        quiet, _ = await join(srv.url, "u-quiet")
        assert await quiet.refused("timeout") == 4408
        assert await srv.event_kinds(2) == [("joined", "u-quiet"), ("reconnecting", "u-quiet")]
