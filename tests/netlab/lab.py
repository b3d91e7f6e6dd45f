"""A thin link made by the kernel: two network namespaces joined by a veth pair, each end
shaped with a token bucket (``tc qdisc … tbf``) to a 2G/EDGE rate.

Why namespaces and not a proxy or Playwright's throttling: the server and Chromium then talk
over real TCP (and WebRTC over real UDP) through a real bottleneck, with the kernel's queues,
retransmissions and congestion control, and the veth counters say how many bytes really
crossed the link, headers included. ``netem`` (delay, loss) is not available on the machines
that run this, so the link has a rate and can be cut (``ip link set … down``), nothing more;
what queueing delay it has comes from the token bucket under load, as on a real thin link.

The server's end is ``10.203.0.1``, the client's (the clinic) ``10.203.0.2``. The addresses
are the same in every lab: namespaces do not see each other, only the names must differ.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

PREFIX = "tmlab"
SERVER_IP = "10.203.0.1"
CLIENT_IP = "10.203.0.2"
PORT = 8000  # the server namespace has its own ports: no clash with anything else
CHROMIUM = os.environ.get("TELEMED_TEST_CHROMIUM", "/usr/bin/chromium")
CLONE_NEWNET = 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)  # setns(2), which Python 3.11's os module lacks

T = TypeVar("T")


class LabUnavailable(Exception):
    """This machine cannot make the lab (not root, no ``ip netns``, no ``tbf``)."""


def ip(*args: str) -> str:
    """Run ``ip``/``tc`` style commands; a failure raises with what the tool said."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except FileNotFoundError as exc:
        raise LabUnavailable(f"{args[0]} is not installed (apt-get install iproute2)") from exc
    if done.returncode != 0:
        raise LabUnavailable(f"`{' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Wire:
    """Bytes counted by the client's veth end: ``down`` received from the server, ``up``
    sent to it, Ethernet/IP/TCP/UDP headers included."""

    down: int
    up: int

    @property
    def total(self) -> int:
        return self.down + self.up

    def __sub__(self, earlier: Wire) -> Wire:
        return Wire(self.down - earlier.down, self.up - earlier.up)

    def __str__(self) -> str:
        return f"{self.total / 1000:.1f} KB ({self.down / 1000:.1f} down, {self.up / 1000:.1f} up)"


class Lab:
    """One pair of namespaces. ``up()`` makes it, ``down()`` removes it (also half-made)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.server_ns = f"{PREFIX}-{tag}-server"
        self.client_ns = f"{PREFIX}-{tag}-client"
        self.server_if = f"tl{tag}s"[:15]  # interface names have at most 15 characters
        self.client_if = f"tl{tag}c"[:15]
        self.kbit: int | None = None

    @property
    def url(self) -> str:
        return f"http://{SERVER_IP}:{PORT}"

    def up(self) -> None:
        ip("ip", "netns", "add", self.server_ns)
        ip("ip", "netns", "add", self.client_ns)
        ip("ip", "link", "add", self.server_if, "type", "veth", "peer", "name", self.client_if)
        for ns, dev, address in (
            (self.server_ns, self.server_if, SERVER_IP),
            (self.client_ns, self.client_if, CLIENT_IP),
        ):
            ip("ip", "link", "set", dev, "netns", ns)
            # Nothing but our own traffic on the counters: no IPv6 router solicitations.
            ip("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            ip("ip", "-n", ns, "addr", "add", f"{address}/30", "dev", dev)
            ip("ip", "-n", ns, "link", "set", "lo", "up")
            ip("ip", "-n", ns, "link", "set", dev, "up")

    def down(self) -> None:
        """Remove both namespaces (their veth ends go with them); quiet about what is gone."""
        for ns in (self.server_ns, self.client_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        # A pair made but not yet moved into the namespaces is still in ours.
        subprocess.run(["ip", "link", "del", self.server_if], capture_output=True, timeout=30)

    def shape(self, kbit: int) -> None:
        """Both directions at ``kbit`` kbit/s. The bucket holds two packets (the rate is kept
        to the packet) and the queue half a second of traffic, then the kernel drops."""
        for ns, dev in ((self.server_ns, self.server_if), (self.client_ns, self.client_if)):
            ip("tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf",
               "rate", f"{kbit}kbit", "burst", "3000", "latency", "500ms")  # fmt: skip
        self.kbit = kbit

    def wire(self) -> Wire:
        """The client end's counters now (``ip -s``: the kernel's rx_bytes/tx_bytes)."""
        out = ip(
            "ip", "-n", self.client_ns, "-json", "-stats", "link", "show", "dev", self.client_if
        )
        stats = json.loads(out)[0]["stats64"]
        return Wire(down=int(stats["rx"]["bytes"]), up=int(stats["tx"]["bytes"]))

    def set_link(self, up: bool) -> None:
        ip("ip", "-n", self.client_ns, "link", "set", self.client_if, "up" if up else "down")

    def cut(self, seconds: float) -> None:
        """The clinic's link goes down for ``seconds`` (both ends lose carrier), then back.
        Connections are not told: their packets are lost until the link returns."""
        self.set_link(False)
        try:
            time.sleep(seconds)
        finally:
            self.set_link(True)

    def drop_connections(self) -> None:
        """The clinic forgets its TCP connections to the server (``ss -K``), as a phone does
        when its mobile network goes away: Android destroys the sockets of an address that
        is removed. The page's requests then fail at once instead of waiting in TCP's
        retransmissions, and what brings an upload back is the page's own resume."""
        ip("ip", "netns", "exec", self.client_ns, "ss", "-K", "dst", SERVER_IP)

    @contextmanager
    def link_down(self) -> Iterator[None]:
        """The link is down for as long as the block runs."""
        self.set_link(False)
        try:
            yield
        finally:
            self.set_link(True)

    def run_in(self, ns: str, fn: Callable[[], T], timeout: float = 60) -> T:
        """``fn()`` on a thread that has joined namespace ``ns``, so the sockets it opens are
        that namespace's: the test reaches the server from inside its own namespace (over its
        loopback, not the shaped link, so nothing it does shows on the counters)."""
        result: list[T] = []
        error: list[BaseException] = []

        def target() -> None:
            try:
                with open(f"/run/netns/{ns}") as handle:
                    if LIBC.setns(handle.fileno(), CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns into {ns}")
                result.append(fn())
            except BaseException as exc:  # handed to the caller's thread
                error.append(exc)

        thread = threading.Thread(target=target, name=f"in-{ns}", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"{fn!r} in namespace {ns} still running after {timeout} s")
        if error:
            raise error[0]
        return result[0]

    def chromium_in(self, ns: str, directory: Path) -> Path:
        """An executable that starts Chromium inside ``ns``, for Playwright's
        ``executable_path``: Playwright talks to it over inherited pipes
        (``--remote-debugging-pipe``), which ``ip netns exec`` passes on unchanged."""
        wrapper = directory / f"chromium-{ns}"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {ns} {CHROMIUM} "$@"\n')
        wrapper.chmod(0o755)
        return wrapper


def remove_stale() -> None:
    """Namespaces left by an earlier run that was killed (its process is gone)."""
    for line in ip("ip", "netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        ours = len(parts) == 3 and parts[0] == PREFIX and parts[1].isdigit()
        if ours and not Path(f"/proc/{parts[1]}").exists():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


@contextmanager
def lab() -> Iterator[Lab]:
    """A lab named after this process, removed when the block ends, however it ends."""
    if os.geteuid() != 0:
        raise LabUnavailable("network namespaces need root (CI runs as root)")
    remove_stale()
    made = Lab(str(os.getpid()))
    try:
        made.up()
        made.shape(128)
        yield made
    finally:
        made.down()
