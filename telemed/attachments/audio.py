"""Voice notes: is this really Opus, and how long is it? Read from the container itself.

A voice note is sent over 2G, so it must be small (Opus at 16 kbit/s) and short (three
minutes). The browser's word for it (``audio/webm``) says nothing about the codec or the
length, and a file can claim anything, so both are read from the bytes:

- **Ogg** (Firefox's MediaRecorder, ``opusenc``): the first packet of the stream must be an
  ``OpusHead``; the length is the granule position of the stream's last page (samples at
  48 kHz, always, for Opus) minus the pre-skip the header declares (RFC 7845).
- **WebM** (Chromium's MediaRecorder): the EBML header's DocType ``webm``, and an audio
  track whose CodecID is ``A_OPUS``; the length is the Info's Duration when the file has
  one, otherwise (a recorder writes live and never goes back to fill it in) the time of
  the last block: its cluster's Timecode plus its own offset, plus one 20 ms frame.

Pure functions over a file; nothing here touches the database. Each refusal is a
``ValidationFailed`` naming the field ``file``.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from telemed.errors import ValidationFailed
from telemed.timefmt import clip_length

OPUS_RATE = 48_000
# A voice note's limit, and the slack a recorder's auto-stop may overshoot it by.
MAX_VOICE_NOTE_MS = 180_000
DURATION_TOLERANCE_MS = 3_000
OPUS_FRAME_MS = 20


@dataclass(frozen=True)
class AudioInfo:
    container: str  # "ogg" or "webm"
    codec: str  # "opus"
    duration_ms: int


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, field="file")


# --- Ogg ------------------------------------------------------------------------------------

_OGG_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, type, granule, serial, seq, crc, n


OGG_CODECS = ((b"\x01vorbis", "Vorbis"), (b"\x7fFLAC", "FLAC"), (b"Speex", "Speex"))


def _ogg_pages(f: BinaryIO) -> list[tuple[int, int, bytes]]:
    """(granule, serial, first bytes of the payload) of every page, in order."""
    pages: list[tuple[int, int, bytes]] = []
    total = f.seek(0, io.SEEK_END)
    f.seek(0)
    while True:
        header = f.read(_OGG_HEADER.size)
        if not header:
            return pages
        if len(header) < _OGG_HEADER.size:
            raise _refuse("the Ogg file is cut short (a page header is incomplete)")
        capture, version, _type, granule, serial, _seq, _crc, count = _OGG_HEADER.unpack(header)
        if capture != b"OggS" or version != 0:
            raise _refuse("the Ogg file is damaged: a page does not start with OggS")
        lacing = f.read(count)
        if len(lacing) < count:
            raise _refuse("the Ogg file is cut short (a segment table is incomplete)")
        size = sum(lacing)
        payload = f.read(min(size, 19))
        if f.seek(size - len(payload), io.SEEK_CUR) > total:
            raise _refuse("the Ogg file is cut short (its last page is incomplete)")
        pages.append((granule, serial, payload))


def _ogg_info(f: BinaryIO) -> AudioInfo:
    pages = _ogg_pages(f)
    if not pages:
        raise _refuse("the Ogg file holds no pages")
    first_granule, serial, head = pages[0]
    if not head.startswith(b"OpusHead"):
        codec = next((name for magic, name in OGG_CODECS if head.startswith(magic)), "unknown")
        raise _refuse(
            f"the Ogg file holds {codec} audio, not Opus; record the voice note again "
            "(the page records Opus)"
        )
    if len(head) < 12:
        raise _refuse("the Opus header is cut short")
    pre_skip = struct.unpack_from("<H", head, 10)[0]
    granules = [g for g, s, _ in pages if s == serial and g >= 0]
    last = max(granules, default=first_granule)
    samples = max(0, last - pre_skip)
    return AudioInfo("ogg", "opus", samples * 1000 // OPUS_RATE)


# --- WebM (EBML) ----------------------------------------------------------------------------

EBML = 0x1A45DFA3
DOC_TYPE = 0x4282
SEGMENT = 0x18538067
INFO = 0x1549A966
TIMECODE_SCALE = 0x2AD7B1
DURATION = 0x4489
TRACKS = 0x1654AE6B
TRACK_ENTRY = 0xAE
TRACK_TYPE = 0x83
CODEC_ID = 0x86
CLUSTER = 0x1F43B675
TIMECODE = 0xE7
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
# Elements inside a Cluster: a cluster of unknown size ends at the first ID not among them.
CLUSTER_CHILDREN = frozenset({TIMECODE, SIMPLE_BLOCK, BLOCK_GROUP, 0xA7, 0xAB, 0x5854})
AUDIO_TRACK = 2


def _vint(f: BinaryIO, *, keep_marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length integer: (value, its length), None at the end of the file;
    an element size of all ones (unknown) is returned as -1."""
    first = f.read(1)
    if not first:
        return None
    b = first[0]
    length = 1
    while length <= 8 and not b & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise _refuse("the WebM file is damaged (an invalid element header)")
    rest = f.read(length - 1)
    if len(rest) < length - 1:
        raise _refuse("the WebM file is cut short")
    value = b if keep_marker else b & (0xFF >> length)
    for byte in rest:
        value = (value << 8) | byte
    if not keep_marker and value == (1 << (7 * length)) - 1:
        return -1, length
    return value, length


def _element(f: BinaryIO) -> tuple[int, int] | None:
    """(id, size) of the element at the current position; size -1 when unknown."""
    found = _vint(f, keep_marker=True)
    if found is None:
        return None
    size = _vint(f, keep_marker=False)
    if size is None:
        raise _refuse("the WebM file is cut short")
    return found[0], size[0]


def _uint(data: bytes) -> int:
    return int.from_bytes(data, "big") if data else 0


@dataclass
class _WebM:
    doc_type: str = ""
    scale_ns: int = 1_000_000
    duration: float | None = None
    codecs: list[tuple[int, str]] | None = None
    cluster_ms: int = 0
    last_block_ms: int = -1


def _read(f: BinaryIO, size: int) -> bytes:
    data = f.read(size)
    if len(data) < size:
        raise _refuse("the WebM file is cut short")
    return data


def _children(f: BinaryIO, end: int | None, state: _WebM, parent: int) -> int | None:
    """Walk the elements up to ``end`` (None: unknown size); returns the ID that ended an
    unknown-size cluster (already read, to be handled by the caller), if any."""
    while end is None or f.tell() < end:
        start = f.tell()
        found = _element(f)
        if found is None:
            return None
        ident, size = found
        if parent == CLUSTER and end is None and ident not in CLUSTER_CHILDREN:
            f.seek(start)
            return ident
        body_end = None if size < 0 else f.tell() + size
        if ident in (SEGMENT, INFO, TRACKS, TRACK_ENTRY, CLUSTER, BLOCK_GROUP):
            if ident == TRACK_ENTRY:
                state.codecs = (state.codecs or []) + [(0, "")]
            if ident == CLUSTER:
                state.cluster_ms = 0
            _children(f, body_end, state, ident)
            if body_end is not None:
                f.seek(body_end)
            continue
        if size < 0:
            raise _refuse("the WebM file is damaged (an element of unknown size)")
        if ident == DOC_TYPE and parent == EBML:
            state.doc_type = _read(f, size).decode("latin-1")
        elif ident == TIMECODE_SCALE:
            state.scale_ns = _uint(_read(f, size)) or 1_000_000
        elif ident == DURATION and size in (4, 8):
            state.duration = struct.unpack(">f" if size == 4 else ">d", _read(f, size))[0]
        elif ident in (TRACK_TYPE, CODEC_ID) and state.codecs:
            kind, codec = state.codecs[-1]
            value = _read(f, size)
            if ident == TRACK_TYPE:
                kind = _uint(value)
            else:
                codec = value.rstrip(b"\0").decode("latin-1")
            state.codecs[-1] = (kind, codec)
        elif ident == TIMECODE and parent == CLUSTER:
            state.cluster_ms = _uint(_read(f, size)) * state.scale_ns // 1_000_000
        elif ident in (SIMPLE_BLOCK, BLOCK):
            head = _read(f, min(size, 12))
            track_len = 1
            while track_len <= 8 and not head[0] & (0x80 >> (track_len - 1)):
                track_len += 1
            relative = struct.unpack_from(">h", head, track_len)[0]
            at = state.cluster_ms + relative * state.scale_ns // 1_000_000
            state.last_block_ms = max(state.last_block_ms, at)
        else:
            f.seek(size, 1)
        if body_end is not None and f.tell() != body_end:
            f.seek(body_end)
    return None


def _webm_info(f: BinaryIO) -> AudioInfo:
    state = _WebM()
    found = _element(f)
    if found is None or found[0] != EBML or found[1] < 0:
        raise _refuse("the file is not WebM (no EBML header)")
    header_end = f.tell() + found[1]
    _children(f, header_end, state, EBML)
    f.seek(header_end)
    if state.doc_type != "webm":
        raise _refuse(f"the file is {state.doc_type or 'not'} WebM, not an audio WebM")
    _children(f, None, state, 0)  # the Segment, whose size a live recorder leaves unknown
    audio = [codec for kind, codec in state.codecs or [] if kind in (AUDIO_TRACK, 0)]
    if not audio:
        raise _refuse("the WebM file has no audio track")
    if "A_OPUS" not in audio:
        raise _refuse(
            f"the WebM file holds {', '.join(audio)} audio, not Opus; record the voice note "
            "again (the page records Opus)"
        )
    if state.duration is not None and state.duration > 0:
        duration_ms = int(state.duration * state.scale_ns / 1_000_000)
    elif state.last_block_ms >= 0:
        duration_ms = state.last_block_ms + OPUS_FRAME_MS
    else:
        raise _refuse("the WebM file holds no audio blocks")
    return AudioInfo("webm", "opus", duration_ms)


# --- both -----------------------------------------------------------------------------------


def opus_info(source: bytes | Path) -> AudioInfo:
    """The container, codec and length of an Opus voice note; refused if it is none."""
    with source.open("rb") if isinstance(source, Path) else io.BytesIO(source) as f:
        head = f.read(4)
        f.seek(0)
        try:
            if head == b"OggS":
                return _ogg_info(f)
            if head == b"\x1a\x45\xdf\xa3":
                return _webm_info(f)
        except (struct.error, IndexError, UnicodeDecodeError) as exc:
            raise _refuse(f"the audio file is damaged ({exc.__class__.__name__})") from exc
    raise _refuse("a voice note must be Ogg or WebM audio with the Opus codec")


def check_voice_note(info: AudioInfo, limit_ms: int = MAX_VOICE_NOTE_MS) -> None:
    if info.duration_ms > limit_ms + DURATION_TOLERANCE_MS:
        raise _refuse(
            f"the voice note lasts {clip_length(info.duration_ms)}; at most "
            f"{clip_length(limit_ms)} are accepted"
        )
    if info.duration_ms <= 0:
        raise _refuse("the voice note is empty (no sound was recorded)")
