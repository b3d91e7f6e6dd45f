"""``Sequenced``: a room message encoded once, then stamped with each recipient's ``seq``.

The fast paths must produce exactly what ``serialize`` produces for the same message.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from signaling.protocol import (
    Answer,
    Candidate,
    CandidateMessage,
    IceRestart,
    Offer,
    Peer,
    PeerJoined,
    PeerLeft,
    Relayed,
    Sequenced,
    parse,
    serialize,
)

RELAYED: list[Relayed] = [
    Offer(sdp="v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n", to="u-3", rid="r1"),
    Answer(sdp='v=0 "quoted" ünïcödé', to="u-3"),
    CandidateMessage(
        candidate=Candidate(
            candidate="candidate:1 1 udp 2122260223 192.168.1.5 54400 typ host",
            sdp_mid="0",
            sdp_mline_index=0,
            username_fragment="q7Zs",
        ),
        rid="r2",
    ),
    CandidateMessage(candidate=Candidate(candidate="")),
    CandidateMessage(candidate=Candidate(candidate="c", sdp_mline_index=3)),
    CandidateMessage(candidate=None, to="u-3"),
    IceRestart(reason="network changed"),
    IceRestart(),
]


@pytest.mark.parametrize("message", RELAYED, ids=lambda m: type(m).__name__)
def test_relayed_fast_path_matches_serialize(message: Relayed) -> None:
    expected = serialize(replace(message, sender="u-17", to=None, rid=None, seq=42))
    assert Sequenced.relayed(message, "u-17").at(42) == expected
    assert Sequenced(replace(message, sender="u-17", to=None, rid="x")).at(42) == expected
    back = parse(expected, source="server")
    assert back == replace(message, sender="u-17", to=None, rid=None, seq=42)


def test_one_encoding_serves_every_recipient() -> None:
    peer = Peer(participant="u-3", name='Sr "L" Ntho', role="clinician", polite=True)
    for message in (
        PeerJoined(peer=peer, rejoined=True),
        PeerLeft(participant="u-3", reason="gone"),
    ):
        encoded = Sequenced(message)
        assert [encoded.at(n) for n in (1, 7)] == [
            serialize(replace(message, seq=n)) for n in (1, 7)
        ]
