"""Deadlines for what a test waits on outside its own code: a child's output, a thread.

A bare ``process.stdout.readline()`` blocks for ever when the child hangs or never prints,
and the whole run then stops until pytest-timeout (pyproject.toml) kills the test with
nothing but a stack. These helpers wait with a deadline instead and fail naming what was
awaited and what the child printed so far.

Lines are read on a daemon thread into a queue, not with ``select`` on the pipe: a text
stream's buffer may already hold the next line while the pipe itself has nothing to read.
"""

from __future__ import annotations

import asyncio
import queue
import subprocess
import threading
import time
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import pytest


class LineReader:
    """The lines a child process writes to its stdout, each awaited with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        if process.stdout is None:
            raise ValueError("start the process with stdout=subprocess.PIPE")
        self.process = process
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(
            target=self._pump, args=(process.stdout,), name="line-reader", daemon=True
        ).start()

    def _pump(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self._lines.put(line)
        except ValueError:  # the test closed the pipe while we were reading
            pass
        finally:
            self._lines.put(None)  # the end of the output

    def next_line(self, timeout: float, waiting_for: str) -> str:
        try:
            line = self._lines.get(timeout=timeout)
            timed_out = False
        except queue.Empty:
            line, timed_out = None, True
        if timed_out:
            pytest.fail(
                f"no line within {timeout} s while waiting for {waiting_for}; "
                f"the process (pid {self.process.pid}) printed before: {self.seen!r}"
            )
        if line is None:
            self._lines.put(None)  # stays at the end for later callers
            pytest.fail(
                f"the process closed its output (exit status {self.process.poll()}) while "
                f"waiting for {waiting_for}; it printed before: {self.seen!r}"
            )
        self.seen.append(line)
        return line


_readers: weakref.WeakKeyDictionary[subprocess.Popen[str], LineReader] = weakref.WeakKeyDictionary()


def read_line(process: subprocess.Popen[str], timeout: float, waiting_for: str) -> str:
    """The next line of ``process``'s stdout, or a failure after ``timeout`` seconds (or at
    the end of its output) that names ``waiting_for`` and what the process printed."""
    reader = _readers.get(process)
    if reader is None:
        reader = _readers[process] = LineReader(process)
    return reader.next_line(timeout, waiting_for)


async def read_line_async(stream: asyncio.StreamReader, seconds: float, waiting_for: str) -> str:
    """The asyncio version, for ``asyncio.create_subprocess_exec(..., stdout=PIPE)``."""
    raw: bytes | None = None
    try:
        async with asyncio.timeout(seconds):
            raw = await stream.readline()
    except TimeoutError:
        pass
    if raw is None:
        pytest.fail(f"no line within {seconds} s while waiting for {waiting_for}")
    if not raw:
        pytest.fail(f"the process closed its output while waiting for {waiting_for}")
    return raw.decode()


def join_all(threads: Iterable[threading.Thread], timeout: float, what: str) -> None:
    """Join every thread within one shared deadline; fail naming those still running."""
    deadline = time.monotonic() + timeout
    started = list(threads)
    for thread in started:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in started if t.is_alive()]
    if stuck:
        pytest.fail(f"{what}: threads {stuck} still running after {timeout} s")


def wait_healthy(process: subprocess.Popen[bytes], base: str, log: Path, seconds: float) -> None:
    """Until ``base``/healthz answers 200; fails with the end of ``log`` if the server exits
    or is not ready within ``seconds`` (workers importing on a busy machine are slow)."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.3)


def stop(process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``seconds``."""
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
