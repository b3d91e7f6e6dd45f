"""Sans-I/O signalling protocol: typed messages, ``parse`` and ``serialize``.

This module is the executable form of ``docs/signaling-protocol.md``. It does no I/O so that it
can be tested without a network and reused by any client (the aiortc test peers, benchmarks).
Every way a frame can be wrong ends in one exception type, :class:`ProtocolError`, whose ``code``
is the error code the server puts on the wire; that keeps the server's error handling to one
``except`` clause.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 65536
MAX_ID_LENGTH = 128
MAX_RID_LENGTH = 64
MAX_TOKEN_LENGTH = 4096
MAX_TEXT_LENGTH = 200
MAX_STATS = 32


class ErrorCode(enum.StrEnum):
    """Codes of ``error`` frames (section 11 of the protocol page)."""

    BAD_JSON = "bad_json"
    BAD_MESSAGE = "bad_message"
    UNKNOWN_TYPE = "unknown_type"
    TOO_BIG = "too_big"
    NOT_AUTHENTICATED = "not_authenticated"
    ALREADY_JOINED = "already_joined"
    BAD_TOKEN = "bad_token"  # noqa: S105 - an error code, not a secret
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - an error code, not a secret
    WRONG_ROOM = "wrong_room"
    TOKEN_REUSED = "token_reused"  # noqa: S105 - an error code, not a secret
    ROOM_FULL = "room_full"
    RESUME_FAILED = "resume_failed"
    TIMEOUT = "timeout"
    REPLACED = "replaced"
    UNKNOWN_PEER = "unknown_peer"
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"


class CloseCode(enum.IntEnum):
    """WebSocket close codes the server uses."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    BAD_REQUEST = 4400
    UNAUTHORIZED = 4401
    ROOM_FULL = 4403
    RESUME_FAILED = 4404
    TIMEOUT = 4408
    REPLACED = 4409
    RATE_LIMITED = 4429
    SLOW_CONSUMER = 4507


#: Close code that follows a fatal error of each code.
CLOSE_FOR_ERROR: Mapping[ErrorCode, CloseCode] = {
    ErrorCode.BAD_JSON: CloseCode.BAD_REQUEST,
    ErrorCode.BAD_MESSAGE: CloseCode.BAD_REQUEST,
    ErrorCode.UNKNOWN_TYPE: CloseCode.BAD_REQUEST,
    ErrorCode.NOT_AUTHENTICATED: CloseCode.BAD_REQUEST,
    ErrorCode.TOO_BIG: CloseCode.MESSAGE_TOO_BIG,
    ErrorCode.BAD_TOKEN: CloseCode.UNAUTHORIZED,
    ErrorCode.TOKEN_EXPIRED: CloseCode.UNAUTHORIZED,
    ErrorCode.WRONG_ROOM: CloseCode.UNAUTHORIZED,
    ErrorCode.TOKEN_REUSED: CloseCode.UNAUTHORIZED,
    ErrorCode.ROOM_FULL: CloseCode.ROOM_FULL,
    ErrorCode.RESUME_FAILED: CloseCode.RESUME_FAILED,
    ErrorCode.TIMEOUT: CloseCode.TIMEOUT,
    ErrorCode.REPLACED: CloseCode.REPLACED,
    ErrorCode.RATE_LIMITED: CloseCode.RATE_LIMITED,
    ErrorCode.INTERNAL: CloseCode.INTERNAL_ERROR,
}


class ProtocolError(Exception):
    """A frame that cannot be accepted; ``code`` goes on the wire in the ``error`` frame."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


MediaMode: TypeAlias = Literal["normal", "low", "audio-only"]
PeerState: TypeAlias = Literal["active", "reconnecting"]
LeaveReason: TypeAlias = Literal["left", "gone"]
MEDIA_MODES: tuple[MediaMode, ...] = ("normal", "low", "audio-only")
PEER_STATES: tuple[PeerState, ...] = ("active", "reconnecting")
LEAVE_REASONS: tuple[LeaveReason, ...] = ("left", "gone")


# ---------------------------------------------------------------- field readers


def _missing(key: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_MESSAGE, f"'{key}' is required")


def _invalid(key: str, why: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_MESSAGE, f"'{key}' {why}")


def _opt_str(d: Mapping[str, Any], key: str, max_len: int, *, min_len: int = 1) -> str | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(key, "must be a string")
    if not min_len <= len(value) <= max_len:
        raise _invalid(key, f"must be {min_len} to {max_len} characters")
    return value


def _str(d: Mapping[str, Any], key: str, max_len: int, *, min_len: int = 1) -> str:
    value = _opt_str(d, key, max_len, min_len=min_len)
    if value is None:
        raise _missing(key)
    return value


def _opt_int(d: Mapping[str, Any], key: str) -> int | None:
    value = d.get(key)
    if value is None:
        return None
    # bool is an int in Python but not in the protocol.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(key, "must be a non-negative integer")
    return value


def _int(d: Mapping[str, Any], key: str) -> int:
    value = _opt_int(d, key)
    if value is None:
        raise _missing(key)
    return value


def _bool(d: Mapping[str, Any], key: str, default: bool) -> bool:
    value = d.get(key, default)
    if not isinstance(value, bool):
        raise _invalid(key, "must be true or false")
    return value


def _choice(d: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = d.get(key)
    if value is None:
        raise _missing(key)
    if value not in choices:
        raise _invalid(key, f"must be one of {', '.join(choices)}")
    return str(value)


def _obj(d: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = d.get(key)
    if value is None:
        raise _missing(key)
    if not isinstance(value, dict):
        raise _invalid(key, "must be an object")
    return value


def _strip(d: dict[str, Any]) -> dict[str, Any]:
    """Drop absent optional members so frames stay small on 2G links."""
    return {k: v for k, v in d.items() if v is not None}


# ---------------------------------------------------------------- value objects


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Who a participant is, as the token says."""

    participant: str
    name: str
    role: str

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Identity:
        return cls(
            participant=_str(d, "participant", MAX_ID_LENGTH),
            name=_str(d, "name", MAX_TEXT_LENGTH, min_len=0),
            role=_str(d, "role", MAX_ID_LENGTH),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"participant": self.participant, "name": self.name, "role": self.role}


@dataclass(frozen=True, slots=True, kw_only=True)
class Peer:
    """Another participant as seen by the recipient (``polite`` is relative to the recipient)."""

    participant: str
    name: str
    role: str
    polite: bool
    state: PeerState = "active"
    media: MediaMode = "normal"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Peer:
        ident = Identity.from_dict(d)
        polite = d.get("polite")
        if not isinstance(polite, bool):
            raise _invalid("polite", "must be true or false")
        state: Any = _choice(d, "state", PEER_STATES)
        media: Any = _choice(d, "media", MEDIA_MODES)
        return cls(
            participant=ident.participant,
            name=ident.name,
            role=ident.role,
            polite=polite,
            state=state,
            media=media,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "participant": self.participant,
            "name": self.name,
            "role": self.role,
            "polite": self.polite,
            "state": self.state,
            "media": self.media,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Limits announced in ``welcome`` so clients can pace themselves."""

    max_message_bytes: int
    rate_per_s: float
    burst: int
    heartbeat_s: float
    idle_timeout_s: float
    grace_s: float

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Limits:
        def num(key: str) -> float:
            v = d.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise _invalid(key, "must be a non-negative number")
            return float(v)

        return cls(
            max_message_bytes=_int(d, "max_message_bytes"),
            rate_per_s=num("rate_per_s"),
            burst=_int(d, "burst"),
            heartbeat_s=num("heartbeat_s"),
            idle_timeout_s=num("idle_timeout_s"),
            grace_s=num("grace_s"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_message_bytes": self.max_message_bytes,
            "rate_per_s": self.rate_per_s,
            "burst": self.burst,
            "heartbeat_s": self.heartbeat_s,
            "idle_timeout_s": self.idle_timeout_s,
            "grace_s": self.grace_s,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One trickled ICE candidate (``RTCIceCandidateInit``).

    ``candidate == ""`` is end-of-candidates for one ICE generation, as browsers send it.
    """

    candidate: str
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None
    username_fragment: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Candidate:
        # Fast path (every well-formed browser candidate): the checks inline; anything
        # else goes through the helpers below, which name the offending member.
        cand, mid, index, ufrag = (
            d.get("candidate"),
            d.get("sdpMid"),
            d.get("sdpMLineIndex"),
            d.get("usernameFragment"),
        )
        if (
            type(cand) is str
            and len(cand) <= MAX_MESSAGE_BYTES
            and (mid is None or (type(mid) is str and len(mid) <= MAX_ID_LENGTH))
            and (index is None or (type(index) is int and index >= 0))
            and (ufrag is None or (type(ufrag) is str and len(ufrag) <= 256))
        ):
            return cls(candidate=cand, sdp_mid=mid, sdp_mline_index=index, username_fragment=ufrag)
        return cls(
            candidate=_str(d, "candidate", MAX_MESSAGE_BYTES, min_len=0),
            sdp_mid=_opt_str(d, "sdpMid", MAX_ID_LENGTH, min_len=0),
            sdp_mline_index=_opt_int(d, "sdpMLineIndex"),
            username_fragment=_opt_str(d, "usernameFragment", 256, min_len=0),
        )

    def to_dict(self) -> dict[str, Any]:
        return _strip(
            {
                "candidate": self.candidate,
                "sdpMid": self.sdp_mid,
                "sdpMLineIndex": self.sdp_mline_index,
                "usernameFragment": self.username_fragment,
            }
        )


# ---------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    TYPE: ClassVar[str] = "hello"
    room: str
    token: str
    client: str | None = None
    rid: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> Hello:
        return cls(
            room=_str(d, "room", MAX_ID_LENGTH),
            token=_str(d, "token", MAX_TOKEN_LENGTH),
            client=_opt_str(d, "client", MAX_TEXT_LENGTH, min_len=0),
            rid=rid,
        )

    def body(self) -> dict[str, Any]:
        return {"room": self.room, "token": self.token, "client": self.client}


@dataclass(frozen=True, slots=True, kw_only=True)
class Welcome:
    TYPE: ClassVar[str] = "welcome"
    session: str
    resume_token: str
    room: str
    participant: Identity
    peers: tuple[Peer, ...]
    seq: int
    limits: Limits
    rid: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> Welcome:
        return cls(
            session=_str(d, "session", MAX_ID_LENGTH),
            resume_token=_str(d, "resume_token", MAX_ID_LENGTH),
            room=_str(d, "room", MAX_ID_LENGTH),
            participant=Identity.from_dict(_obj(d, "participant")),
            peers=_peers(d),
            seq=_int(d, "seq"),
            limits=Limits.from_dict(_obj(d, "limits")),
            rid=rid,
        )

    def body(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "resume_token": self.resume_token,
            "room": self.room,
            "participant": self.participant.to_dict(),
            "peers": [p.to_dict() for p in self.peers],
            "seq": self.seq,
            "limits": self.limits.to_dict(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Resume:
    TYPE: ClassVar[str] = "resume"
    session: str
    resume_token: str
    last_seq: int
    rid: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> Resume:
        return cls(
            session=_str(d, "session", MAX_ID_LENGTH),
            resume_token=_str(d, "resume_token", MAX_ID_LENGTH),
            last_seq=_int(d, "last_seq"),
            rid=rid,
        )

    def body(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "resume_token": self.resume_token,
            "last_seq": self.last_seq,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Resumed:
    TYPE: ClassVar[str] = "resumed"
    session: str
    resume_token: str
    peers: tuple[Peer, ...]
    seq: int
    replayed: int
    #: The session moved to another instance: only relayed messages are replayed, ``peers``
    #: tells who came and went meanwhile (protocol §9).
    moved: bool = False
    rid: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> Resumed:
        return cls(
            session=_str(d, "session", MAX_ID_LENGTH),
            resume_token=_str(d, "resume_token", MAX_ID_LENGTH),
            peers=_peers(d),
            seq=_int(d, "seq"),
            replayed=_int(d, "replayed"),
            moved=d.get("moved") is True,
            rid=rid,
        )

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "session": self.session,
            "resume_token": self.resume_token,
            "peers": [p.to_dict() for p in self.peers],
            "seq": self.seq,
            "replayed": self.replayed,
        }
        if self.moved:
            body["moved"] = True
        return body


def _peers(d: Mapping[str, Any]) -> tuple[Peer, ...]:
    value = d.get("peers")
    if not isinstance(value, list):
        raise _invalid("peers", "must be a list")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise _invalid("peers", "must hold objects")
        out.append(Peer.from_dict(item))
    return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerJoined:
    TYPE: ClassVar[str] = "peer-joined"
    peer: Peer
    rejoined: bool = False
    seq: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> PeerJoined:
        return cls(
            peer=Peer.from_dict(_obj(d, "peer")),
            rejoined=_bool(d, "rejoined", False),
            seq=_opt_int(d, "seq"),
        )

    def body(self) -> dict[str, Any]:
        return {"peer": self.peer.to_dict(), "rejoined": self.rejoined}


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerUpdated:
    TYPE: ClassVar[str] = "peer-updated"
    peer: Peer
    seq: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> PeerUpdated:
        return cls(peer=Peer.from_dict(_obj(d, "peer")), seq=_opt_int(d, "seq"))

    def body(self) -> dict[str, Any]:
        return {"peer": self.peer.to_dict()}


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerLeft:
    TYPE: ClassVar[str] = "peer-left"
    participant: str
    reason: LeaveReason
    seq: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> PeerLeft:
        reason: Any = _choice(d, "reason", LEAVE_REASONS)
        return cls(
            participant=_str(d, "participant", MAX_ID_LENGTH),
            reason=reason,
            seq=_opt_int(d, "seq"),
        )

    def body(self) -> dict[str, Any]:
        return {"participant": self.participant, "reason": self.reason}


def _routing(d: Mapping[str, Any]) -> tuple[str | None, str | None, int | None]:
    """``to``, ``from`` and ``seq`` of a relayed message."""
    to, sender, seq = d.get("to"), d.get("from"), d.get("seq")
    if (
        (to is None or (type(to) is str and 0 < len(to) <= MAX_ID_LENGTH))
        and (sender is None or (type(sender) is str and 0 < len(sender) <= MAX_ID_LENGTH))
        and (seq is None or (type(seq) is int and seq >= 0))
    ):
        return to, sender, seq  # the usual case, checked inline (hot path)
    return (
        _opt_str(d, "to", MAX_ID_LENGTH),
        _opt_str(d, "from", MAX_ID_LENGTH),
        _opt_int(d, "seq"),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """SDP offer. ``to`` is set by clients, ``sender`` (``from`` on the wire) by the server."""

    TYPE: ClassVar[str] = "offer"
    sdp: str
    to: str | None = None
    sender: str | None = None
    seq: int | None = None
    rid: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> Offer:
        to, sender, seq = _routing(d)
        sdp = _str(d, "sdp", MAX_MESSAGE_BYTES)
        return cls(sdp=sdp, to=to, sender=sender, seq=seq, rid=rid)

    def body(self) -> dict[str, Any]:
        return {"to": self.to, "from": self.sender, "sdp": self.sdp}


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    TYPE: ClassVar[str] = "answer"
    sdp: str
    to: str | None = None
    sender: str | None = None
    seq: int | None = None
    rid: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> Answer:
        to, sender, seq = _routing(d)
        sdp = _str(d, "sdp", MAX_MESSAGE_BYTES)
        return cls(sdp=sdp, to=to, sender=sender, seq=seq, rid=rid)

    def body(self) -> dict[str, Any]:
        return {"to": self.to, "from": self.sender, "sdp": self.sdp}


@dataclass(frozen=True, slots=True, kw_only=True)
class CandidateMessage:
    """A trickled candidate; ``candidate is None`` means end-of-candidates for all m-lines."""

    TYPE: ClassVar[str] = "candidate"
    candidate: Candidate | None
    to: str | None = None
    sender: str | None = None
    seq: int | None = None
    rid: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> CandidateMessage:
        if "candidate" not in d:
            raise _missing("candidate")
        raw = d["candidate"]
        if raw is not None and not isinstance(raw, dict):
            raise _invalid("candidate", "must be an object or null")
        cand = None if raw is None else Candidate.from_dict(raw)
        to, sender, seq = _routing(d)
        return cls(candidate=cand, to=to, sender=sender, seq=seq, rid=rid)

    @property
    def end_of_candidates(self) -> bool:
        return self.candidate is None or self.candidate.candidate == ""

    def body(self) -> dict[str, Any]:
        return {
            "to": self.to,
            "from": self.sender,
            # Explicit null is meaningful here, so it must survive _strip.
            "candidate": _KEEP_NULL if self.candidate is None else self.candidate.to_dict(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class IceRestart:
    TYPE: ClassVar[str] = "ice-restart"
    reason: str | None = None
    to: str | None = None
    sender: str | None = None
    seq: int | None = None
    rid: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> IceRestart:
        to, sender, seq = _routing(d)
        reason = _opt_str(d, "reason", MAX_TEXT_LENGTH, min_len=0)
        return cls(reason=reason, to=to, sender=sender, seq=seq, rid=rid)

    def body(self) -> dict[str, Any]:
        return {"to": self.to, "from": self.sender, "reason": self.reason}


@dataclass(frozen=True, slots=True, kw_only=True)
class Media:
    TYPE: ClassVar[str] = "media"
    mode: MediaMode
    rid: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> Media:
        mode: Any = _choice(d, "mode", MEDIA_MODES)
        return cls(mode=mode, rid=rid)

    def body(self) -> dict[str, Any]:
        return {"mode": self.mode}


@dataclass(frozen=True, slots=True, kw_only=True)
class Quality:
    TYPE: ClassVar[str] = "quality"
    stats: Mapping[str, float] = field(default_factory=dict)
    rid: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> Quality:
        raw = _obj(d, "stats")
        if len(raw) > MAX_STATS:
            raise _invalid("stats", f"must have at most {MAX_STATS} members")
        stats: dict[str, float] = {}
        for k, v in raw.items():
            if len(k) > MAX_ID_LENGTH:
                raise _invalid("stats", "has a name that is too long")
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise _invalid("stats", "must hold numbers")
            stats[k] = v
        return cls(stats=stats, rid=rid)

    def body(self) -> dict[str, Any]:
        return {"stats": dict(self.stats)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    TYPE: ClassVar[str] = "ping"
    rid: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> Ping:
        return cls(rid=rid)

    def body(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    TYPE: ClassVar[str] = "pong"
    rid: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> Pong:
        return cls(rid=rid)

    def body(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Leave:
    TYPE: ClassVar[str] = "leave"
    rid: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> Leave:
        return cls(rid=rid)

    def body(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    TYPE: ClassVar[str] = "ack"
    rid: str

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> Ack:
        if rid is None:
            raise _missing("rid")
        return cls(rid=rid)

    def body(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Error:
    TYPE: ClassVar[str] = "error"
    code: ErrorCode
    message: str
    fatal: bool = False
    rid: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], rid: str | None) -> Error:
        code = _choice(d, "code", tuple(c.value for c in ErrorCode))
        return cls(
            code=ErrorCode(code),
            message=_str(d, "message", 1000, min_len=0),
            fatal=_bool(d, "fatal", False),
            rid=rid,
        )

    def body(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message, "fatal": self.fatal}


ClientMessage: TypeAlias = (
    Hello | Resume | Offer | Answer | CandidateMessage | IceRestart | Media | Quality | Ping | Leave
)
ServerMessage: TypeAlias = (
    Welcome
    | Resumed
    | PeerJoined
    | PeerUpdated
    | PeerLeft
    | Offer
    | Answer
    | CandidateMessage
    | IceRestart
    | Pong
    | Ack
    | Error
)
Message: TypeAlias = ClientMessage | ServerMessage
#: Messages one peer sends to another through the server.
Relayed: TypeAlias = Offer | Answer | CandidateMessage | IceRestart

_ALL: tuple[type[Message], ...] = (
    Hello,
    Welcome,
    Resume,
    Resumed,
    PeerJoined,
    PeerUpdated,
    PeerLeft,
    Offer,
    Answer,
    CandidateMessage,
    IceRestart,
    Media,
    Quality,
    Ping,
    Pong,
    Leave,
    Ack,
    Error,
)
_CLIENT_CLASSES: tuple[type[ClientMessage], ...] = (
    Hello,
    Resume,
    Offer,
    Answer,
    CandidateMessage,
    IceRestart,
    Media,
    Quality,
    Ping,
    Leave,
)
_CLIENT_TYPES = frozenset(c.TYPE for c in _CLIENT_CLASSES)
_SERVER_TYPES = frozenset(c.TYPE for c in _ALL) - {
    Hello.TYPE,
    Resume.TYPE,
    Media.TYPE,
    Quality.TYPE,
    Ping.TYPE,
    Leave.TYPE,
}
_ALLOWED = {"client": _CLIENT_TYPES, "server": _SERVER_TYPES}
_BY_TYPE: dict[str, Callable[[Mapping[str, Any], str | None], Message]] = {
    c.TYPE: c.from_dict for c in _ALL
}


class _KeepNull:
    """Marker for a member whose ``null`` value carries meaning."""


_KEEP_NULL = _KeepNull()


def _reject_constant(name: str) -> Any:
    raise ProtocolError(ErrorCode.BAD_JSON, f"{name} is not valid JSON")


# One decoder and one encoder for every frame: ``json.loads``/``json.dumps`` with options build
# a new one per call, a measurable part of relaying a message.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# What _ENCODER.encode does for a str, called directly (the C function; the hot path).
_encode_str: Callable[[str], str] = json.encoder.encode_basestring


def _decode(text: str) -> Any:
    """``_DECODER.decode(text)``, calling the C scanner directly when the text starts with
    ``{`` (every well-formed frame): two Python calls fewer per message."""
    if not text.startswith("{"):
        return _DECODER.decode(text)
    try:
        data, end = _SCAN(text, 0)
    except StopIteration as exc:
        raise ValueError("not valid JSON") from exc
    if end != len(text) and text[end:].strip(" \t\n\r"):
        raise ValueError("extra data after the JSON value")
    return data


# Set by JSONDecoder.__init__ (the C scanner when available), but not in the type stubs.
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _check_size(text: str, max_bytes: int) -> None:
    # Cheap bounds first: UTF-8 takes 1 to 4 bytes per character.
    if len(text) > max_bytes or (
        len(text) * 4 > max_bytes and len(text.encode("utf-8")) > max_bytes
    ):
        raise ProtocolError(ErrorCode.TOO_BIG, f"message larger than {max_bytes} bytes")


def parse(
    text: str,
    *,
    max_bytes: int = MAX_MESSAGE_BYTES,
    source: Literal["client", "server", "any"] = "any",
) -> Message:
    """Parse one frame. ``source`` restricts the types to those that side may send.

    Raises :class:`ProtocolError` with ``too_big``, ``bad_json``, ``unknown_type`` or
    ``bad_message``.
    """
    _check_size(text, max_bytes)
    try:
        data = _decode(text)
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, "not valid JSON") from exc
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "a message must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'type' is required")
    factory = _BY_TYPE.get(kind)
    allowed = _ALLOWED.get(source)
    if factory is None or (allowed is not None and kind not in allowed):
        shown = kind if len(kind) <= 40 else kind[:40] + "..."
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {shown!r}")
    rid = _opt_str(data, "rid", MAX_RID_LENGTH)
    return factory(data, rid)


def parse_client(text: str, *, max_bytes: int = MAX_MESSAGE_BYTES) -> ClientMessage:
    """:func:`parse` for the server side: only types a client may send."""
    message = parse(text, max_bytes=max_bytes, source="client")
    if not isinstance(message, _CLIENT_CLASSES):  # pragma: no cover - parse guarantees it
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, "not a client message")
    return message


def to_dict(message: Message) -> dict[str, Any]:
    """The JSON object for ``message``, with absent optional members left out."""
    out: dict[str, Any] = {"type": message.TYPE}
    rid = getattr(message, "rid", None)
    seq = getattr(message, "seq", None)
    if rid is not None:
        out["rid"] = rid
    if seq is not None and not isinstance(message, Welcome | Resumed):
        out["seq"] = seq
    for key, value in message.body().items():
        if value is _KEEP_NULL:
            out[key] = None
        elif value is not None:
            out[key] = value
    return out


def serialize(message: Message) -> str:
    """Encode ``message`` as compact JSON text (one WebSocket text frame)."""
    return _ENCODER.encode(to_dict(message))


class Sequenced:
    """A room message encoded once, for recipients that each get their own ``seq``.

    ``Sequenced(message).at(seq) == serialize(replace(message, seq=seq))`` (``rid`` dropped),
    but the JSON encoding is done once however many recipients there are.
    """

    __slots__ = ("_head", "_tail")

    def __init__(self, message: Message) -> None:
        data = to_dict(message)
        kind = data.pop("type")
        data.pop("rid", None)
        data.pop("seq", None)
        body = _ENCODER.encode(data)
        self._head = '{"type":' + _ENCODER.encode(kind) + ',"seq":'
        self._tail = "}" if body == "{}" else "," + body[1:]

    @classmethod
    def relayed(cls, message: Relayed, sender: str) -> Sequenced:
        """``Sequenced(replace(message, sender=sender, to=None, rid=None))``, built directly.

        The relay path is the server's hot path: this skips the dataclass copy and the
        intermediate dictionaries.
        """
        out = cls.__new__(cls)
        out._head = _SEQ_HEADS[message.TYPE]
        tail = ',"from":' + _encode_str(sender)
        if isinstance(message, CandidateMessage):
            cand = message.candidate
            tail += ',"candidate":' + ("null" if cand is None else _candidate_json(cand))
        elif isinstance(message, IceRestart):
            if message.reason is not None:
                tail += ',"reason":' + _encode_str(message.reason)
        else:
            tail += ',"sdp":' + _encode_str(message.sdp)
        out._tail = tail + "}"
        return out

    @classmethod
    def relayed_from_tail(cls, kind: str, tail: str) -> Sequenced:
        """The inverse of ``(message.TYPE, Sequenced.relayed(message, sender).tail)``: how
        another server instance's already encoded relay is rebuilt without parsing it (see
        ``signaling.envelope``). ``ValueError`` for a kind that is not relayed."""
        head = _SEQ_HEADS.get(kind)
        if head is None:
            raise ValueError(f"not a relayed message type: {kind!r}")
        out = cls.__new__(cls)
        out._head, out._tail = head, tail
        return out

    @property
    def tail(self) -> str:
        """The encoded frame after its ``seq``: the same for every recipient."""
        return self._tail

    def at(self, seq: int) -> str:
        return f"{self._head}{seq}{self._tail}"


def _candidate_json(cand: Candidate) -> str:
    """``_ENCODER.encode(cand.to_dict())`` without building the dictionary (hot path).

    Encoding a ``str`` takes the JSON encoder's C fast path; encoding a ``dict`` sets up a
    new C encoder on every call.
    """
    enc = _encode_str
    out = '{"candidate":' + enc(cand.candidate)
    if cand.sdp_mid is not None:
        out += ',"sdpMid":' + enc(cand.sdp_mid)
    if cand.sdp_mline_index is not None:
        out += ',"sdpMLineIndex":' + str(cand.sdp_mline_index)
    if cand.username_fragment is not None:
        out += ',"usernameFragment":' + enc(cand.username_fragment)
    return out + "}"


_SEQ_HEADS = {
    kind: '{"type":' + _ENCODER.encode(kind) + ',"seq":'
    for kind in (Offer.TYPE, Answer.TYPE, CandidateMessage.TYPE, IceRestart.TYPE)
}
