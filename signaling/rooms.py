"""Room state, pure: membership, capacity, takeover, polite roles, sequencing, replay, grace.

Nothing here does I/O or reads a clock: every method takes the time it needs and returns the
:class:`Effects` the caller must carry out (frames to send to sessions, sessions to close,
events to report). That keeps the rules of the protocol page testable by plain function calls
and lets the server stay a thin shell around them.

A room on one server instance knows two kinds of members: **local** ones, whose sessions this
instance holds (with a replay buffer and a resume token), and **remote** ones, which live on
another instance and are mirrored from what that instance publishes through the broker. Frames
are only ever produced for local members; the instance that holds a member is the only one that
sequences, buffers and replays its messages, and the only one that reports its events.

**Shared sessions** (``scale`` > 1, ``signaling.sessions``): a session may move to another
instance (``resume`` there, :meth:`Room.adopt`), so the numbers its client holds must mean the
same thing on every instance. The broker then numbers the room's publications (``G``, one
order for every instance) and a frame's ``seq`` is ``G * scale`` for a relayed message that
came from another instance, or ``L * scale + k`` for a frame this instance made itself, ``L``
the last publication it had seen and ``k`` counting its own frames since (the relayed ones
carry that number to the others in their envelope). Every instance keeps, for the remote
members of its rooms, the relayed messages their own instance would have delivered to them
with the numbers it used (a *shadow* buffer); the one that adopts a session replays from it.
"""

from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from signaling.protocol import (
    ErrorCode,
    Identity,
    LeaveReason,
    MediaMode,
    Peer,
    PeerJoined,
    PeerLeft,
    PeerState,
    PeerUpdated,
    Relayed,
    Resumed,
    Sequenced,
)

EventKind: TypeAlias = Literal[
    "joined", "reconnecting", "reconnected", "left", "ended", "media", "quality"
]


class RoomError(Exception):
    """An operation the room refuses; ``code`` is the protocol error code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """Something the application should record about a participant of this room."""

    kind: EventKind
    participant: str | None
    role: str | None
    session: str | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Kick:
    """Close ``session``'s socket after a fatal ``error`` with ``code``."""

    session: str
    code: ErrorCode
    message: str


@dataclass(slots=True)
class Effects:
    """What the caller must do after a state change, in order."""

    sends: list[tuple[str, str]] = field(default_factory=list)  # (session id, frame text)
    kicks: list[Kick] = field(default_factory=list)
    events: list[RoomEvent] = field(default_factory=list)

    def extend(self, other: Effects) -> None:
        self.sends.extend(other.sends)
        self.kicks.extend(other.kicks)
        self.events.extend(other.events)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberInfo:
    """A member as instances tell each other about it (no secrets, no buffers)."""

    participant: str
    name: str
    role: str
    since: float
    session: str
    started: float
    state: PeerState
    media: MediaMode
    #: How many times the session was resumed (adopted); the highest is where it lives.
    epoch: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "participant": self.participant,
            "name": self.name,
            "role": self.role,
            "since": self.since,
            "session": self.session,
            "started": self.started,
            "state": self.state,
            "media": self.media,
            "epoch": self.epoch,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MemberInfo:
        return cls(
            participant=str(d["participant"]),
            name=str(d["name"]),
            role=str(d["role"]),
            since=float(d["since"]),
            session=str(d["session"]),
            started=float(d["started"]),
            state=d["state"] if d["state"] in ("active", "reconnecting") else "active",
            media=d["media"] if d["media"] in ("normal", "low", "audio-only") else "normal",
            epoch=int(d.get("epoch", 0)),
        )


@dataclass(slots=True, kw_only=True)
class Member:
    participant: str
    name: str
    role: str
    since: float
    session: str
    #: When this session began; between two sessions of one participant the later one wins.
    started: float
    local: bool
    state: PeerState = "active"
    media: MediaMode = "normal"
    resume_token: str = ""
    deadline: float | None = None
    buffer: deque[tuple[int, str]] = field(default_factory=deque)
    #: Highest seq that can no longer be replayed (evicted, or before the session began).
    floor: int = 0
    epoch: int = 0
    #: The instance that holds a remote member ("" for a local one).
    node: str = ""
    #: A remote member whose instance stopped renewing its liveness: shown ``reconnecting``
    #: until its session turns up again or ``deadline`` passes.
    lapsed: bool = False
    #: A remote member's state as its instance last reported it.
    reported: PeerState = "active"
    #: Remote members, shared sessions: relayed frames for it, numbered as its instance did
    #: (text: tuples of an int and a str are not tracked by the garbage collector).
    shadow: deque[tuple[int, str]] = field(default_factory=deque)
    #: Adopted from instance ``moved_from`` whose numbers the client had up to ``moved_at``:
    #: a late publication of that instance the client had already got is not sent again.
    moved_from: str = ""
    moved_at: int = 0

    @property
    def order(self) -> tuple[float, str]:
        """Position in the room: later positions are polite toward earlier ones."""
        return (self.since, self.participant)

    def info(self) -> MemberInfo:
        return MemberInfo(
            participant=self.participant,
            name=self.name,
            role=self.role,
            since=self.since,
            session=self.session,
            started=self.started,
            state=self.state,
            media=self.media,
            epoch=self.epoch,
        )

    @property
    def generation(self) -> tuple[float, str]:
        return (self.started, self.session)


class Room:
    """One room's membership as seen from one server instance."""

    def __init__(self, room_id: str, *, replay_limit: int = 256, scale: int = 1) -> None:
        if replay_limit < 1:
            raise ValueError("replay_limit must be at least 1")
        self.id = room_id
        self.seq = 0
        #: 1: numbers of this instance alone; more: shared sessions (module docstring).
        self.scale = scale
        self.members: dict[str, Member] = {}
        self._replay_limit = replay_limit
        self._idle_since: float | None = None

    # ------------------------------------------------------------ queries

    def __contains__(self, participant: object) -> bool:
        return participant in self.members

    def local_members(self) -> Iterator[Member]:
        return (m for m in self.members.values() if m.local)

    def by_session(self, session: str) -> Member | None:
        for member in self.members.values():
            if member.session == session:
                return member
        return None

    def peer_view(self, viewer: Member, other: Member) -> Peer:
        """``other`` as ``viewer`` sees it; exactly one side of each pair is polite."""
        return Peer(
            participant=other.participant,
            name=other.name,
            role=other.role,
            polite=viewer.order > other.order,
            state=other.state,
            media=other.media,
        )

    def peers_of(self, viewer: Member) -> tuple[Peer, ...]:
        return tuple(
            self.peer_view(viewer, m)
            for m in sorted(self.members.values(), key=lambda m: m.order)
            if m is not viewer
        )

    def expired(self, now: float, ttl: float) -> bool:
        """True once the room has had no local member for ``ttl`` (the first call starts it)."""
        if any(True for _ in self.local_members()):
            self._idle_since = None
            return False
        if self._idle_since is None:
            self._idle_since = now
        return now - self._idle_since >= ttl

    def due(self, now: float) -> list[str]:
        """Local participants whose grace period has ended without a resume."""
        return [
            m.participant
            for m in self.local_members()
            if m.state == "reconnecting" and m.deadline is not None and m.deadline <= now
        ]

    def lapsed_due(self, now: float) -> list[str]:
        """Remote participants whose instance died and who did not turn up elsewhere in time."""
        return [
            m.participant
            for m in self.members.values()
            if m.lapsed and m.deadline is not None and m.deadline <= now
        ]

    def remote_nodes(self) -> set[str]:
        return {m.node for m in self.members.values() if not m.local and m.node}

    def observe(self, number: int) -> int:
        """A publication numbered ``number`` by the broker; returns its frames' ``seq``."""
        seq = number * self.scale
        if seq > self.seq:
            self.seq = seq
        return seq

    # ------------------------------------------------------------ local sessions

    def admit(
        self,
        identity: Identity,
        *,
        capacity: int,
        session: str,
        resume_token: str,
        at: float,
    ) -> tuple[Member, Effects]:
        """Admit a participant with a new session (a ``hello`` with a valid token) at wall time
        ``at``.

        A participant already in the room is taken over: it keeps its place (so roles do not
        flip), its old session is closed, and the others are told it ``rejoined``.
        """
        fx = Effects()
        old = self.members.get(identity.participant)
        if old is None and len(self.members) >= capacity:
            raise RoomError(ErrorCode.ROOM_FULL, f"the room is full ({capacity} participants)")
        if old is not None and old.local:
            fx.kicks.append(Kick(old.session, ErrorCode.REPLACED, "replaced by a new session"))
        member = Member(
            participant=identity.participant,
            name=identity.name,
            role=identity.role,
            since=old.since if old is not None else at,
            session=session,
            started=at,
            local=True,
            resume_token=resume_token,
            floor=self.seq,
        )
        self.members[member.participant] = member
        self._idle_since = None
        for other in self._local_others(member):
            self._deliver(
                fx, other, PeerJoined(peer=self.peer_view(other, member), rejoined=old is not None)
            )
        member.floor = self.seq
        fx.events.append(self._event("joined", member, rejoined=old is not None))
        return member, fx

    def resume(
        self,
        session: str,
        resume_token: str,
        last_seq: int,
        new_resume_token: str,
        *,
        epoch: int | None = None,
    ) -> tuple[Member, Resumed, list[str], Effects]:
        """Re-attach a session within its grace period and return what it missed.

        Returns the member, the ``resumed`` reply, the frames to replay (in order) and the
        effects on the others. The caller closes the session's previous socket if still open.
        """
        fx = Effects()
        member = self.by_session(session)
        if (
            member is None
            or not member.local
            or not hmac.compare_digest(member.resume_token, resume_token)
        ):
            raise RoomError(ErrorCode.RESUME_FAILED, "unknown session or wrong resume token")
        if last_seq > self.seq:
            raise RoomError(ErrorCode.RESUME_FAILED, "last_seq is ahead of the server")
        if last_seq < member.floor:
            raise RoomError(ErrorCode.RESUME_FAILED, "missed messages are no longer buffered")
        replay = [text for seq, text in member.buffer if seq > last_seq]
        member.resume_token = new_resume_token
        member.deadline = None
        if epoch is not None:
            member.epoch = epoch
        if member.state == "reconnecting":
            member.state = "active"
            self._announce_update(fx, member)
            fx.events.append(self._event("reconnected", member))
        return member, self._resumed(member, replay), replay, fx

    def adoptable(self, session: str, last_seq: int) -> Member:
        """The remote member whose session another instance held, if this instance can replay
        what its client missed after ``last_seq`` (a number of that instance); else
        ``resume_failed``. Checked before the session is taken over in the store, so that a
        resume that cannot succeed here does not use its token up."""
        member = self.by_session(session)
        if member is None or member.local or self.scale == 1:
            raise RoomError(ErrorCode.RESUME_FAILED, "unknown or expired session")
        if last_seq >= (self.seq // self.scale + 1) * self.scale:
            raise RoomError(ErrorCode.RESUME_FAILED, "last_seq is ahead of the server")
        if last_seq < member.floor:
            raise RoomError(ErrorCode.RESUME_FAILED, "missed messages are no longer buffered")
        return member

    def adopt(
        self, session: str, last_seq: int, new_resume_token: str, *, epoch: int
    ) -> tuple[Member, Resumed, list[str], Effects]:
        """Take over a session another instance held (its client resumed here), like
        :meth:`resume`: the relayed messages it missed come from the shadow buffer, with the
        numbers its instance gave them. Room messages (``peer-*``) are not replayed: ``peers``
        in the reply is the room as it is now. The others see the member ``reconnecting``
        (unless they already did) and ``active`` again, never a departure."""
        fx = Effects()
        member = self.adoptable(session, last_seq)
        member.buffer = deque(sorted(member.shadow, key=lambda item: item[0]))
        member.shadow = deque()
        replay = [text for seq, text in member.buffer if seq > last_seq]
        if member.buffer and member.buffer[-1][0] > self.seq:
            self.seq = member.buffer[-1][0]  # our next numbers come after what it has
        member.moved_from, member.moved_at = member.node, last_seq
        member.local, member.node, member.lapsed = True, "", False
        member.epoch, member.resume_token, member.deadline = epoch, new_resume_token, None
        if member.state == "active":
            member.state = "reconnecting"
            self._announce_update(fx, member)
        member.state = "active"
        self._announce_update(fx, member)
        fx.events.append(self._event("reconnected", member, adopted=True))
        return member, self._resumed(member, replay, moved=True), replay, fx

    def _resumed(self, member: Member, replay: list[str], *, moved: bool = False) -> Resumed:
        """The reply to a resume (local or adopted): the member's new token, the room now."""
        return Resumed(
            session=member.session,
            resume_token=member.resume_token,
            peers=self.peers_of(member),
            seq=self.seq,
            replayed=len(replay),
            moved=moved,
        )

    def detach(self, session: str, *, now: float, grace: float) -> Effects:
        """The socket of ``session`` dropped: hold its place for ``grace`` seconds."""
        fx = Effects()
        member = self.by_session(session)
        if member is None or not member.local or member.state == "reconnecting":
            return fx
        member.state = "reconnecting"
        member.deadline = now + grace
        self._announce_update(fx, member)
        fx.events.append(self._event("reconnecting", member))
        return fx

    def depart(self, participant: str, reason: LeaveReason) -> Effects:
        """A local participant left (``leave``) or its grace period ended (``gone``)."""
        fx = Effects()
        member = self.members.get(participant)
        if member is None or not member.local:
            return fx
        del self.members[participant]
        for other in self._local_others(member):
            self._deliver(fx, other, PeerLeft(participant=participant, reason=reason))
        fx.events.append(self._event("left", member, reason=reason))
        if not self.members:
            fx.events.append(RoomEvent("ended", None, None, None))
        return fx

    def relay(
        self,
        sender: str,
        message: Relayed,
        *,
        check: bool = True,
        encoded: Sequenced | None = None,
    ) -> Effects:
        """Forward a peer-to-peer message to its local recipients, stamped with ``from``.

        With ``check`` (a message from a local client), a ``to`` naming nobody in the room is
        refused. Messages relayed from another instance are not checked again. ``encoded`` is
        ``Sequenced.relayed(message, sender)`` when the caller has it already (it also goes to
        the other instances): the message is encoded once in all.
        """
        target = message.to
        if check and target is not None and (target == sender or target not in self.members):
            raise RoomError(ErrorCode.UNKNOWN_PEER, f"no other participant {target!r} in this room")
        return self.forward(sender, target, encoded or Sequenced.relayed(message, sender))

    def forward(
        self,
        sender: str,
        target: str | None,
        encoded: Sequenced,
        *,
        seq: int | None = None,
        origin: str = "",
        origin_seq: int = 0,
        deliver: bool = True,
    ) -> Effects:
        """Deliver an already encoded relayed message to its local recipients, unchecked, all
        under one number: ``seq`` (shared sessions: the publication's, for a message from
        another instance) or the next of this instance's.

        Shared sessions: the remote recipients' shadow buffers get it too, under the number
        ``origin`` gave it (``origin_seq``) for members of ``origin``, else under ``seq``.
        ``deliver`` False: only that (our own publication coming back numbered).
        """
        fx = Effects()
        if seq is None and deliver and self.scale > 1:
            self.seq += 1
            seq = self.seq
        for member in self.members.values():  # _deliver never changes the membership
            if member.participant == sender or (
                target is not None and member.participant != target
            ):
                continue
            if member.local:
                if not deliver or (
                    origin and member.moved_from == origin and origin_seq <= member.moved_at
                ):
                    continue
                if seq is None:  # one instance's numbers: one per frame
                    self._deliver(fx, member, encoded)
                else:
                    self._deliver_at(fx, member, encoded, seq)
            elif origin and seq is not None:  # from the broker: numbered for everyone
                self._shadow(member, origin_seq if member.node == origin else seq, encoded)
        return fx

    def set_media(self, participant: str, mode: MediaMode) -> Effects:
        fx = Effects()
        member = self.members.get(participant)
        if member is None or member.media == mode:
            return fx
        member.media = mode
        self._announce_update(fx, member)
        fx.events.append(self._event("media", member, mode=mode))
        return fx

    # ------------------------------------------------------------ other instances

    def apply_presence(self, info: MemberInfo, node: str = "") -> Effects:
        """Instance ``node`` announced (or re-announced) one of its members."""
        fx = Effects()
        old = self.members.get(info.participant)
        if old is not None and (info.started, info.session) < old.generation:
            # A stale notice about a session that has since been replaced, e.g. an answer
            # to "who is here?" sent just before the takeover reached that instance.
            return fx
        if old is not None and old.session == info.session:
            if info.epoch < old.epoch or (old.local and info.epoch == old.epoch):
                return fx  # stale, or our own member echoed back: we are its authority
            moved = info.epoch > old.epoch
            if old.local:
                # Resumed on another instance: that instance holds the session now.
                fx.kicks.append(
                    Kick(old.session, ErrorCode.REPLACED, "the session resumed elsewhere")
                )
                old.local, old.resume_token, old.deadline = False, "", None
                old.buffer, old.shadow, old.floor = deque(), deque(), self.seq
            if moved and old.state == "active":
                old.state = "reconnecting"  # it dropped somewhere; say so before it is back
                self._announce_update(fx, old)
            if moved or old.lapsed:
                old.lapsed, old.deadline = False, None
            old.node, old.epoch, old.reported = node or old.node, info.epoch, info.state
            changed = (old.state, old.media) != (info.state, info.media)
            old.name, old.role, old.state, old.media = info.name, info.role, info.state, info.media
            if changed:
                self._announce_update(fx, old)
            return fx
        if old is not None and old.local:
            # Taken over through another instance: that session wins.
            fx.kicks.append(Kick(old.session, ErrorCode.REPLACED, "replaced by a new session"))
        member = Member(
            participant=info.participant,
            name=info.name,
            role=info.role,
            since=old.since if old is not None else info.since,
            session=info.session,
            started=info.started,
            local=False,
            state=info.state,
            media=info.media,
            epoch=info.epoch,
            node=node,
            reported=info.state,
            floor=self.seq,
        )
        self.members[member.participant] = member
        for other in self._local_others(member):
            self._deliver(
                fx, other, PeerJoined(peer=self.peer_view(other, member), rejoined=old is not None)
            )
        return fx

    def apply_departure(self, participant: str, session: str, reason: LeaveReason) -> Effects:
        """Another instance's member left; stale notices (an older session) are ignored."""
        fx = Effects()
        member = self.members.get(participant)
        if member is None or member.local or member.session != session:
            return fx
        del self.members[participant]
        for other in self._local_others(member):
            self._deliver(fx, other, PeerLeft(participant=participant, reason=reason))
        return fx

    def lapse(self, nodes: set[str], *, now: float, grace: float) -> Effects:
        """The instances ``nodes`` stopped renewing their liveness: their members are shown
        ``reconnecting`` for ``grace`` seconds (they may resume on another instance)."""
        fx = Effects()
        for member in self.members.values():
            if member.local or member.lapsed or member.node not in nodes:
                continue
            member.lapsed, member.deadline = True, now + grace
            if member.state != "reconnecting":
                member.state = "reconnecting"
                self._announce_update(fx, member)
        return fx

    def revive(self, nodes: set[str]) -> Effects:
        """The instances ``nodes`` renew their liveness again: their members are as they said."""
        fx = Effects()
        for member in self.members.values():
            if not member.lapsed or member.node not in nodes:
                continue
            member.lapsed, member.deadline = False, None
            if member.state != member.reported:
                member.state = member.reported
                self._announce_update(fx, member)
        return fx

    def drop_lapsed(self, participant: str) -> Effects:
        """A member of a dead instance did not turn up anywhere within the grace period."""
        member = self.members.get(participant)
        if member is None or not member.lapsed:
            return Effects()
        return self.apply_departure(participant, member.session, "gone")

    # ------------------------------------------------------------ internals

    def _local_others(self, member: Member) -> list[Member]:
        return [m for m in self.members.values() if m.local and m is not member]

    def _announce_update(self, fx: Effects, member: Member) -> None:
        for other in self._local_others(member):
            self._deliver(fx, other, PeerUpdated(peer=self.peer_view(other, member)))

    def _deliver(
        self,
        fx: Effects,
        member: Member,
        message: PeerJoined | PeerUpdated | PeerLeft | Relayed | Sequenced,
    ) -> None:
        """Sequence, buffer for replay, and send now if the member's socket is attached."""
        self.seq += 1
        encoded = message if isinstance(message, Sequenced) else Sequenced(message)
        self._deliver_at(fx, member, encoded, self.seq)

    def _deliver_at(self, fx: Effects, member: Member, encoded: Sequenced, seq: int) -> None:
        text = encoded.at(seq)
        member.buffer.append((seq, text))
        while len(member.buffer) > self._replay_limit:
            member.floor = member.buffer.popleft()[0]
        if member.state == "active":
            fx.sends.append((member.session, text))

    def _shadow(self, member: Member, seq: int, encoded: Sequenced) -> None:
        member.shadow.append((seq, encoded.at(seq)))
        if len(member.shadow) > self._replay_limit:
            # Numbers from two instances interleave: what is evicted need not be the lowest.
            member.floor = max(member.floor, member.shadow.popleft()[0])

    def _event(self, kind: EventKind, member: Member, **detail: Any) -> RoomEvent:
        return RoomEvent(kind, member.participant, member.role, member.session, detail)
