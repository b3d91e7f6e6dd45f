"""Room state rules, by plain function calls: no sockets, no clock, no sleeping."""

from __future__ import annotations

import pytest

from signaling.protocol import (
    ErrorCode,
    Identity,
    Message,
    Offer,
    PeerJoined,
    PeerLeft,
    PeerUpdated,
    Sequenced,
    parse,
)
from signaling.rooms import Effects, MemberInfo, Room, RoomError

CLIN = Identity(participant="u-3", name="Sr L. Ntho", role="clinician")
SPEC = Identity(participant="u-17", name="Dr M. Mokoena", role="specialist")
INTERP = Identity(participant="u-40", name="Ms P. Lebona", role="interpreter")


def frames(fx: Effects, session: str) -> list[Message]:
    return [parse(text) for s, text in fx.sends if s == session]


def admit(room: Room, who: Identity, session: str, *, since: float, cap: int = 2) -> Effects:
    _, fx = room.admit(who, capacity=cap, session=session, resume_token="rt-" + session, at=since)
    return fx


def test_newcomer_is_polite_toward_those_already_present() -> None:
    room = Room("r")
    admit(room, CLIN, "s-c", since=1)
    fx = admit(room, SPEC, "s-s", since=2)
    [joined] = frames(fx, "s-c")
    assert isinstance(joined, PeerJoined)
    assert joined.peer.participant == "u-17"
    assert joined.peer.polite is False  # the clinician is not polite toward the newcomer
    assert joined.rejoined is False
    spec = room.members["u-17"]
    [clin_seen_by_spec] = room.peers_of(spec)
    assert clin_seen_by_spec.polite is True
    assert [e.kind for e in fx.events] == ["joined"]


def test_capacity_counts_participants_and_takeover_does_not_need_a_free_place() -> None:
    room = Room("r")
    admit(room, CLIN, "s-c", since=1)
    admit(room, SPEC, "s-s", since=2)
    with pytest.raises(RoomError) as caught:
        admit(room, INTERP, "s-i", since=3)
    assert caught.value.code is ErrorCode.ROOM_FULL
    admit(room, INTERP, "s-i", since=3, cap=3)
    admit(room, SPEC, "s-s2", since=4, cap=3)  # same participant: takeover, room still 3
    assert set(room.members) == {"u-3", "u-17", "u-40"}


def test_takeover_kicks_the_old_session_keeps_roles_and_says_rejoined() -> None:
    room = Room("r")
    admit(room, CLIN, "s-c", since=1)
    admit(room, SPEC, "s-s", since=2)
    fx = admit(room, CLIN, "s-c2", since=9)
    assert [(k.session, k.code) for k in fx.kicks] == [("s-c", ErrorCode.REPLACED)]
    [joined] = frames(fx, "s-s")
    assert isinstance(joined, PeerJoined)
    assert joined.rejoined is True
    assert joined.peer.polite is True  # the specialist stays polite: the clinician kept its place
    assert room.members["u-3"].session == "s-c2"
    assert fx.events[0].detail == {"rejoined": True}


def test_relay_stamps_sender_and_sequence_and_refuses_unknown_peers() -> None:
    room = Room("r")
    admit(room, CLIN, "s-c", since=1)
    admit(room, SPEC, "s-s", since=2)
    fx = room.relay("u-17", Offer(sdp="v=0", to="u-3", rid="9"))
    [offer] = frames(fx, "s-c")
    assert offer == Offer(sdp="v=0", sender="u-17", seq=room.seq)
    assert frames(fx, "s-s") == []
    for bad in ("u-99", "u-17"):
        with pytest.raises(RoomError) as caught:
            room.relay("u-17", Offer(sdp="v=0", to=bad))
        assert caught.value.code is ErrorCode.UNKNOWN_PEER


def test_relay_without_to_goes_to_every_other_participant() -> None:
    room = Room("r")
    admit(room, CLIN, "s-c", since=1, cap=3)
    admit(room, SPEC, "s-s", since=2, cap=3)
    admit(room, INTERP, "s-i", since=3, cap=3)
    fx = room.relay("u-3", Offer(sdp="v=0"))
    assert {s for s, _ in fx.sends} == {"s-s", "s-i"}
    seqs = [parse(t).seq for _, t in fx.sends]  # type: ignore[union-attr]
    assert len(set(seqs)) == 2


def test_detach_then_resume_replays_exactly_what_was_missed() -> None:
    room = Room("r")
    admit(room, CLIN, "s-c", since=1)
    admit(room, SPEC, "s-s", since=2)
    first = frames(room.relay("u-3", Offer(sdp="one")), "s-s")[0]
    assert first.seq is not None
    fx = room.detach("s-s", now=100, grace=30)
    [update] = frames(fx, "s-c")
    assert isinstance(update, PeerUpdated)
    assert update.peer.state == "reconnecting"
    assert [e.kind for e in fx.events] == ["reconnecting"]
    # While detached nothing is sent, but it is kept.
    assert room.relay("u-3", Offer(sdp="two")).sends == []
    _, reply, replay, fx = room.resume("s-s", "rt-s-s", first.seq, "rt-new")
    assert reply.replayed == 1
    [missed] = [parse(t) for t in replay]
    assert isinstance(missed, Offer)
    assert (missed.sdp, missed.sender) == ("two", "u-3")
    assert missed.seq is not None
    assert first.seq < missed.seq <= reply.seq
    [back] = frames(fx, "s-c")
    assert isinstance(back, PeerUpdated)
    assert back.peer.state == "active"
    assert [e.kind for e in fx.events] == ["reconnected"]
    # The resume token rotates.
    with pytest.raises(RoomError):
        room.resume("s-s", "rt-s-s", reply.seq, "x")


@pytest.mark.parametrize(
    ("session", "token", "last_seq"),
    [("s-x", "rt-s-s", 0), ("s-s", "wrong", 0), ("s-s", "rt-s-s", 999)],
)
def test_resume_refusals(session: str, token: str, last_seq: int) -> None:
    room = Room("r")
    admit(room, CLIN, "s-c", since=1)
    admit(room, SPEC, "s-s", since=2)
    room.detach("s-s", now=0, grace=30)
    with pytest.raises(RoomError) as caught:
        room.resume(session, token, last_seq, "new")
    assert caught.value.code is ErrorCode.RESUME_FAILED


def test_resume_fails_once_missed_messages_left_the_bounded_buffer() -> None:
    room = Room("r", replay_limit=3)
    admit(room, CLIN, "s-c", since=1)
    room.admit(SPEC, capacity=2, session="s-s", resume_token="rt", at=2)
    start = room.seq
    room.detach("s-s", now=0, grace=30)
    for i in range(5):
        room.relay("u-3", Offer(sdp=str(i)))
    with pytest.raises(RoomError) as caught:
        room.resume("s-s", "rt", start, "new")
    assert caught.value.code is ErrorCode.RESUME_FAILED
    _, reply, replay, _ = room.resume("s-s", "rt", room.seq - 3, "new")
    assert reply.replayed == 3
    assert len(replay) == 3


def test_departure_is_due_only_after_the_grace_period() -> None:
    room = Room("r")
    admit(room, CLIN, "s-c", since=1)
    admit(room, SPEC, "s-s", since=2)
    room.detach("s-s", now=100, grace=30)
    assert room.due(129.9) == []
    assert room.due(130) == ["u-17"]
    fx = room.depart("u-17", "gone")
    [left] = frames(fx, "s-c")
    assert left == PeerLeft(participant="u-17", reason="gone", seq=room.seq)
    assert [e.kind for e in fx.events] == ["left"]
    fx = room.depart("u-3", "left")
    assert [e.kind for e in fx.events] == ["left", "ended"]


def test_a_second_detach_does_not_extend_the_grace_period() -> None:
    room = Room("r")
    admit(room, SPEC, "s-s", since=2)
    room.detach("s-s", now=100, grace=30)
    assert room.detach("s-s", now=120, grace=30).events == []
    assert room.due(130) == ["u-17"]


def test_detach_of_a_replaced_session_changes_nothing() -> None:
    room = Room("r")
    admit(room, CLIN, "s-c", since=1)
    admit(room, CLIN, "s-c2", since=2)
    fx = room.detach("s-c", now=0, grace=30)
    assert fx.events == []
    assert room.members["u-3"].state == "active"


def test_media_mode_is_announced_once_per_change() -> None:
    room = Room("r")
    admit(room, CLIN, "s-c", since=1)
    admit(room, SPEC, "s-s", since=2)
    fx = room.set_media("u-3", "audio-only")
    [update] = frames(fx, "s-s")
    assert isinstance(update, PeerUpdated)
    assert update.peer.media == "audio-only"
    assert fx.events[0].detail == {"mode": "audio-only"}
    assert room.set_media("u-3", "audio-only").sends == []


def test_an_empty_room_expires_after_its_ttl() -> None:
    room = Room("r")
    admit(room, CLIN, "s-c", since=1)
    assert not room.expired(0, ttl=10)
    room.depart("u-3", "left")
    assert not room.expired(100, ttl=10)
    assert not room.expired(109, ttl=10)
    assert room.expired(110, ttl=10)


def _remote(
    who: Identity, session: str, since: float, started: float | None = None, **over: str
) -> MemberInfo:
    fields = {"state": "active", "media": "normal"} | over
    return MemberInfo(
        participant=who.participant,
        name=who.name,
        role=who.role,
        since=since,
        session=session,
        started=since if started is None else started,
        state=fields["state"],
        media=fields["media"],  # type: ignore[arg-type]
    )


def test_members_on_other_instances_are_mirrored_for_local_ones() -> None:
    room = Room("r")
    admit(room, CLIN, "s-c", since=1)
    fx = room.apply_presence(_remote(SPEC, "s-s", since=2))
    [joined] = frames(fx, "s-c")
    assert isinstance(joined, PeerJoined)
    assert joined.peer.polite is False
    assert fx.events == []  # the other instance reports its own member
    fx = room.apply_presence(_remote(SPEC, "s-s", since=2, state="reconnecting"))
    [update] = frames(fx, "s-c")
    assert isinstance(update, PeerUpdated)
    assert update.peer.state == "reconnecting"
    assert room.apply_presence(_remote(SPEC, "s-s", since=2, state="reconnecting")).sends == []
    # A stale departure (older session) is ignored; the current one is announced.
    assert room.apply_departure("u-17", "s-old", "gone").sends == []
    [left] = frames(room.apply_departure("u-17", "s-s", "gone"), "s-c")
    assert isinstance(left, PeerLeft)


def test_relay_from_another_instance_reaches_only_local_recipients() -> None:
    room = Room("r")
    admit(room, CLIN, "s-c", since=1)
    room.apply_presence(_remote(SPEC, "s-s", since=2))
    fx = room.relay("u-17", Offer(sdp="v=0", to="u-3"), check=False)
    assert [s for s, _ in fx.sends] == ["s-c"]
    assert room.relay("u-3", Offer(sdp="v=0", to="u-17")).sends == []  # remote: not ours to send


def test_takeover_through_another_instance_kicks_the_local_session() -> None:
    room = Room("r")
    admit(room, CLIN, "s-c", since=1)
    admit(room, SPEC, "s-s", since=2)
    fx = room.apply_presence(_remote(SPEC, "s-s-elsewhere", since=50))
    assert [(k.session, k.code) for k in fx.kicks] == [("s-s", ErrorCode.REPLACED)]
    [joined] = frames(fx, "s-c")
    assert isinstance(joined, PeerJoined)
    assert joined.rejoined is True
    assert joined.peer.polite is False  # kept its place
    assert not room.members["u-17"].local
    # Our own member echoed back by the broker changes nothing.
    assert room.apply_presence(room.members["u-3"].info()).sends == []


def test_a_stale_presence_for_a_replaced_session_is_ignored() -> None:
    room = Room("r")
    admit(room, CLIN, "s-c", since=1)
    admit(room, SPEC, "s-new", since=50)  # took over here at 50
    # Another instance still describes the session it held before (started at 2).
    fx = room.apply_presence(_remote(SPEC, "s-old", since=2, started=2))
    assert fx.kicks == []
    assert fx.sends == []
    assert room.members["u-17"].session == "s-new"
    assert room.members["u-17"].local


def test_a_session_adopted_by_another_instance_gets_what_it_missed_in_its_old_numbers() -> None:
    """Instances a (the clinician's) and b (the specialist's) apply the same numbered
    publications; b adopts the clinician's session, replays only what a had not delivered,
    and the specialist sees reconnecting then active, never a departure."""
    scale = 1 << 16
    a, b = Room("r", scale=scale), Room("r", scale=scale)
    admit(a, CLIN, "s-c", since=1)
    admit(b, SPEC, "s-s", since=2)
    clin, spec = a.members["u-3"].info(), b.members["u-17"].info()
    for room in (a, b):
        room.observe(1)  # publication 1: a announces the clinician
    b.apply_presence(clin, "a")
    for room in (a, b):
        room.observe(2)  # publication 2: b announces the specialist
    a.apply_presence(spec, "b")

    def published(number: int, sdp: str) -> list[Message]:
        """The specialist's offer, relayed on b and published as ``number``."""
        offer = Offer(sdp=sdp, to="u-3")
        b.relay("u-17", offer)
        origin_seq = b.seq
        encoded = Sequenced.relayed(offer, "u-17")
        b.forward("u-17", "u-3", encoded, seq=b.observe(number), origin="b", deliver=False)
        fx = a.forward(
            "u-17", "u-3", encoded, seq=a.observe(number), origin="b", origin_seq=origin_seq
        )
        return frames(fx, "s-c")

    [got] = published(3, "v=0 got")
    a.detach("s-c", now=10, grace=30)
    assert published(4, "v=0 missed") == []  # a buffers it; a dies with it

    fx = b.lapse({"a"}, now=11, grace=30)
    assert [f.peer.state for f in frames(fx, "s-s")] == ["reconnecting"]  # type: ignore[union-attr]
    with pytest.raises(RoomError):
        b.adoptable("s-c", 5 * scale)  # numbers b never gave out
    _, reply, replay, fx = b.adopt("s-c", got.seq, "rt-new", epoch=1)  # type: ignore[attr-defined]
    assert reply.moved
    assert [parse(t).sdp for t in replay] == ["v=0 missed"]  # type: ignore[union-attr]
    assert parse(replay[0]).seq == 4 * scale  # type: ignore[union-attr]
    assert [f.peer.state for f in frames(fx, "s-s")] == ["active"]  # type: ignore[union-attr]
    assert "u-3" in b.members
    assert b.members["u-3"].local
