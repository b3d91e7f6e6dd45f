"""The broker envelope (``signaling.envelope``): a relayed frame crosses instances encoded once.

The receiving instance must deliver exactly the frame it would have produced itself from the
client's message, without parsing it.
"""

from __future__ import annotations

import json

import pytest

from signaling import envelope
from signaling.protocol import Candidate, CandidateMessage, Offer, Sequenced, parse_client


def test_a_relayed_frame_arrives_as_the_sender_encoded_it() -> None:
    message = parse_client(
        '{"type":"candidate","to":"b","candidate":{"candidate":"candidate:1 1 udp 1 '
        '10.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0},"rid":"r1"}'
    )
    assert isinstance(message, CandidateMessage)
    encoded = Sequenced.relayed(message, "a")

    data = envelope.relay("node-1", "a", message.to, message.TYPE, encoded)
    got = envelope.read(data)

    assert isinstance(got, envelope.RelayEnvelope)
    assert (got.node, got.sender, got.to) == ("node-1", "a", "b")
    assert got.encoded.at(7) == encoded.at(7)
    frame = json.loads(got.encoded.at(7))
    assert frame["seq"] == 7
    assert frame["from"] == "a"
    assert "rid" not in frame
    assert "to" not in frame


def test_newlines_and_quotes_in_names_and_sdp_stay_inside_their_fields() -> None:
    offer = Offer(sdp='v=0\r\no=- 1 "x"\n', to=None)
    sender = 'a\n"b"'
    encoded = Sequenced.relayed(offer, sender)

    got = envelope.read(envelope.relay("n", sender, None, offer.TYPE, encoded))

    assert isinstance(got, envelope.RelayEnvelope)
    assert got.sender == sender
    assert got.to is None
    assert json.loads(got.encoded.at(1))["sdp"] == offer.sdp


def test_control_envelopes_and_other_versions() -> None:
    got = envelope.read(envelope.control("n", "gone", {"participant": "a", "reason": "left"}))
    assert isinstance(got, envelope.ControlEnvelope)
    assert (got.kind, got.body["participant"]) == ("gone", "a")

    tail = Sequenced.relayed(CandidateMessage(candidate=Candidate(candidate="")), "a").tail
    assert envelope.read('[1,"n","a",null,"candidate"]\n' + tail) is None
    assert envelope.read('[2,"n","a",null,"candidate"]\n' + tail) is None
    assert envelope.read('{"v":1,"node":"n","k":"sync"}') is None


@pytest.mark.parametrize(
    "data",
    [
        '[3,"n","a",null,"ping",1]\n}',
        '[3,"n","a",null]\n}',
        '[3,"n",3,null,"offer",1]\n}',
        '[3,"n","a",null,"offer","1"]\n}',
        "[]",
    ],
)
def test_malformed_relay_envelopes_are_refused(data: str) -> None:
    with pytest.raises(ValueError, match=r"malformed|not a relayed"):
        envelope.read(data)
