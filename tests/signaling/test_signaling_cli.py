"""``python -m signaling`` starts a server that admits a client with a minted token."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from signaling_helpers import SECRET, TIMEOUT, Client, token

from tests.process_helpers import read_line_async


async def test_standalone_server_starts_and_admits_a_client() -> None:
    env = {**os.environ, "SIGNALING_SECRET": SECRET.decode()}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "signaling",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdout is not None
    try:
        line = json.loads(await read_line_async(proc.stdout, TIMEOUT * 2, "'listening'"))
        assert line["event"] == "listening"
        client = await Client.connect(f"ws://127.0.0.1:{line['port']}/")
        await client.hello(token("u-clin"))
        await client.roundtrip()
        event = json.loads(await read_line_async(proc.stdout, TIMEOUT, "the 'joined' event"))
        assert (event["event"], event["kind"], event["participant"]) == (
            "session",
            "joined",
            "u-clin",
        )
        await client.close()
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
