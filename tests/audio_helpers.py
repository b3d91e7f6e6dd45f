"""Real audio files for tests, encoded by libopus (through PyAV, a declared dependency).

A voice note is checked by parsing its container (Ogg pages, WebM elements), so the tests
need real ones: a header glued to zeros would not have a duration to read.
"""

from __future__ import annotations

import io

import av
import numpy as np

RATE = 48_000
FRAME = 960  # 20 ms at 48 kHz, Opus's usual frame


def encode(
    seconds: float,
    container: str = "ogg",
    *,
    codec: str = "libopus",
    bitrate: int = 16_000,
    live: bool = False,
) -> bytes:
    """``seconds`` of a 440 Hz tone, mono, in ``container`` ("ogg" or "webm").

    ``live`` writes a WebM as a browser's MediaRecorder does: no Duration element and no
    cues, so the length must be read from the blocks.
    """
    out = io.BytesIO()
    options = {"live": "1"} if live else {}
    with av.open(out, "w", format=container, options=options) as muxer:
        stream = muxer.add_stream(codec, rate=RATE, layout="mono")
        stream.bit_rate = bitrate
        fmt = "flt" if codec != "flac" else "s16"
        total = int(seconds * RATE)
        t = np.arange(total) / RATE
        tone = 0.3 * np.sin(2 * np.pi * 440 * t)
        samples = tone.astype(np.float32) if fmt == "flt" else (tone * 32767).astype(np.int16)
        for start in range(0, total, FRAME):
            chunk = samples[start : start + FRAME]
            if len(chunk) < FRAME:
                chunk = np.pad(chunk, (0, FRAME - len(chunk)))
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format=fmt, layout="mono")
            frame.sample_rate = RATE
            frame.pts = start
            for packet in stream.encode(frame):
                muxer.mux(packet)
        for packet in stream.encode(None):
            muxer.mux(packet)
    return out.getvalue()
