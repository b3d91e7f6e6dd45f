"""The sans-I/O protocol module, without any network."""

from __future__ import annotations

import json

import pytest

from signaling.protocol import (
    MAX_MESSAGE_BYTES,
    Ack,
    Answer,
    Candidate,
    CandidateMessage,
    Error,
    ErrorCode,
    Hello,
    IceRestart,
    Identity,
    Leave,
    Limits,
    Media,
    Message,
    Offer,
    Peer,
    PeerJoined,
    PeerLeft,
    PeerUpdated,
    Ping,
    Pong,
    ProtocolError,
    Quality,
    Resume,
    Resumed,
    Welcome,
    parse,
    serialize,
)

PEER = Peer(participant="u-3", name="Sr L. Ntho", role="clinician", polite=True)
LIMITS = Limits(
    max_message_bytes=65536, rate_per_s=50, burst=100, heartbeat_s=10, idle_timeout_s=30, grace_s=30
)

EXAMPLES: list[Message] = [
    Hello(room="consult-42", token="abc.def", client="test/1", rid="1"),
    Welcome(
        session="s1",
        resume_token="rt",
        room="consult-42",
        participant=Identity(participant="u-17", name="Dr M", role="specialist"),
        peers=(PEER,),
        seq=4,
        limits=LIMITS,
        rid="1",
    ),
    Resume(session="s1", resume_token="rt", last_seq=12, rid="r"),
    Resumed(session="s1", resume_token="rt2", peers=(PEER,), seq=14, replayed=1),
    PeerJoined(peer=PEER, rejoined=True, seq=5),
    PeerUpdated(
        peer=Peer(
            participant="u-3",
            name="n",
            role="clinician",
            polite=False,
            state="reconnecting",
            media="low",
        ),
        seq=6,
    ),
    PeerLeft(participant="u-3", reason="gone", seq=7),
    Offer(sdp="v=0\r\n", to="u-3", rid="2"),
    Offer(sdp="v=0\r\n", sender="u-17", seq=8),
    Answer(sdp="v=0\r\n", sender="u-3", seq=9),
    CandidateMessage(
        candidate=Candidate(
            candidate="candidate:1 1 udp 1 10.0.0.1 9 typ host",
            sdp_mid="0",
            sdp_mline_index=0,
            username_fragment="uf",
        ),
        to="u-3",
    ),
    CandidateMessage(candidate=Candidate(candidate=""), sender="u-3", seq=10),
    CandidateMessage(candidate=None, to="u-3", rid="3"),
    IceRestart(reason="network changed", to="u-3"),
    Media(mode="audio-only", rid="4"),
    Quality(stats={"rtt_ms": 180, "loss": 0.02}),
    Ping(rid="5"),
    Pong(rid="5"),
    Leave(),
    Ack(rid="6"),
    Error(code=ErrorCode.UNKNOWN_PEER, message="no such peer", rid="7"),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.TYPE)
def test_serialize_then_parse_gives_the_same_message(message: Message) -> None:
    text = serialize(message)
    assert parse(text) == message
    assert json.loads(text)["type"] == message.TYPE


def test_absent_optional_members_are_left_out_and_from_is_the_wire_name() -> None:
    assert json.loads(serialize(Offer(sdp="x", sender="u-1", seq=3))) == {
        "type": "offer",
        "seq": 3,
        "from": "u-1",
        "sdp": "x",
    }
    assert json.loads(serialize(Ping())) == {"type": "ping"}


def test_end_of_candidates_is_an_explicit_null_or_an_empty_candidate() -> None:
    text = serialize(CandidateMessage(candidate=None))
    assert json.loads(text) == {"type": "candidate", "candidate": None}
    assert isinstance(m := parse(text), CandidateMessage)
    assert m.end_of_candidates
    empty = parse('{"type":"candidate","candidate":{"candidate":"","sdpMid":null}}')
    assert isinstance(empty, CandidateMessage)
    assert empty.end_of_candidates
    full = parse(
        '{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 h 9 typ host"}}'
    )
    assert isinstance(full, CandidateMessage)
    assert not full.end_of_candidates


def test_unknown_members_are_ignored_for_forward_compatibility() -> None:
    assert parse('{"type":"ping","future":1}') == Ping()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", ErrorCode.BAD_JSON),
        ("", ErrorCode.BAD_JSON),
        ("[1, 2]", ErrorCode.BAD_JSON),
        ('"hello"', ErrorCode.BAD_JSON),
        ('{"type":"quality","stats":{"x":NaN}}', ErrorCode.BAD_JSON),
        ("{}", ErrorCode.BAD_MESSAGE),
        ('{"type":7}', ErrorCode.BAD_MESSAGE),
        ('{"type":"shout"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type":"hello","token":"t"}', ErrorCode.BAD_MESSAGE),
        ('{"type":"hello","room":"","token":"t"}', ErrorCode.BAD_MESSAGE),
        ('{"type":"hello","room":"r","token":5}', ErrorCode.BAD_MESSAGE),
        ('{"type":"resume","session":"s","resume_token":"t","last_seq":-1}', ErrorCode.BAD_MESSAGE),
        (
            '{"type":"resume","session":"s","resume_token":"t","last_seq":true}',
            ErrorCode.BAD_MESSAGE,
        ),
        (
            '{"type":"resume","session":"s","resume_token":"t","last_seq":1.5}',
            ErrorCode.BAD_MESSAGE,
        ),
        ('{"type":"offer"}', ErrorCode.BAD_MESSAGE),
        ('{"type":"offer","sdp":"v=0","to":""}', ErrorCode.BAD_MESSAGE),
        ('{"type":"candidate"}', ErrorCode.BAD_MESSAGE),
        ('{"type":"candidate","candidate":"a=candidate"}', ErrorCode.BAD_MESSAGE),
        (
            '{"type":"candidate","candidate":{"candidate":"c","sdpMLineIndex":"0"}}',
            ErrorCode.BAD_MESSAGE,
        ),
        ('{"type":"media","mode":"hd"}', ErrorCode.BAD_MESSAGE),
        ('{"type":"quality","stats":{"rtt":"fast"}}', ErrorCode.BAD_MESSAGE),
        ('{"type":"ping","rid":""}', ErrorCode.BAD_MESSAGE),
        ('{"type":"ping","rid":"' + "r" * 65 + '"}', ErrorCode.BAD_MESSAGE),
        ('{"type":"ping","rid":3}', ErrorCode.BAD_MESSAGE),
    ],
)
def test_malformed_frames_raise_protocol_error_with_their_code(text: str, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(text)
    assert caught.value.code is code
    assert caught.value.message


def test_too_many_stats_are_refused() -> None:
    stats = {f"k{i}": i for i in range(33)}
    with pytest.raises(ProtocolError) as caught:
        parse(json.dumps({"type": "quality", "stats": stats}))
    assert caught.value.code is ErrorCode.BAD_MESSAGE


def test_oversize_is_measured_in_utf8_bytes() -> None:
    # 3 bytes per character: short in characters, too big in bytes.
    body = "\u2603" * (MAX_MESSAGE_BYTES // 3)
    text = json.dumps({"type": "offer", "sdp": body}, ensure_ascii=False)
    assert len(text) < MAX_MESSAGE_BYTES
    with pytest.raises(ProtocolError) as caught:
        parse(text)
    assert caught.value.code is ErrorCode.TOO_BIG
    with pytest.raises(ProtocolError) as caught:
        parse(json.dumps({"type": "ping"}), max_bytes=5)
    assert caught.value.code is ErrorCode.TOO_BIG


def test_exactly_the_limit_is_accepted() -> None:
    overhead = len('{"type":"offer","sdp":""}')
    text = json.dumps({"type": "offer", "sdp": "x" * (1000 - overhead)}, separators=(",", ":"))
    assert len(text) == 1000
    assert isinstance(parse(text, max_bytes=1000), Offer)


def test_deeply_nested_json_is_bad_json_not_a_crash() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse("[" * 100_000 + "]" * 100_000, max_bytes=10**6)
    assert caught.value.code is ErrorCode.BAD_JSON


@pytest.mark.parametrize("kind", ["welcome", "peer-joined", "ack", "error", "pong", "resumed"])
def test_clients_may_not_send_server_types(kind: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(json.dumps({"type": kind}), source="client")
    assert caught.value.code is ErrorCode.UNKNOWN_TYPE


@pytest.mark.parametrize("kind", ["hello", "resume", "media", "quality", "ping", "leave"])
def test_servers_do_not_send_client_types(kind: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(json.dumps({"type": kind}), source="server")
    assert caught.value.code is ErrorCode.UNKNOWN_TYPE


def test_relayed_types_flow_both_ways() -> None:
    for kind in ("offer", "answer"):
        text = json.dumps({"type": kind, "sdp": "v=0"})
        assert parse(text, source="client") == parse(text, source="server")


def test_an_aiortc_style_complete_sdp_offer_is_just_an_offer() -> None:
    sdp = "v=0\r\n" + "a=candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host\r\n" * 20
    message = parse(json.dumps({"type": "offer", "sdp": sdp}), source="client")
    assert isinstance(message, Offer)
    assert message.sdp == sdp
