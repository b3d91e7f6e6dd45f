"""The ``telemed`` command line run inside the test's own process, with click's runner.

The same commands, options, output and exit codes as ``python -m telemed``, without an
interpreter start and the application's imports for every call: at four calls a test, those
cost the audit, DHIS2 and FHIR tests minutes of CI. The entry point itself
(``python -m telemed``) is still run as a process by tests/test_cli.py, and the commands
that must be processes (a server, a scheduler, a crash) stay so in their own tests."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from click.testing import CliRunner

from telemed.cli import main


@dataclass(frozen=True)
class Ran:
    """What ``subprocess.run`` would have told: exit status and the two streams."""

    returncode: int
    stdout: str
    stderr: str


def run_telemed(args: Sequence[str], env: Mapping[str, str]) -> Ran:
    """``telemed *args`` with the settings in ``env`` and none of this process's other
    ``TELEMED_*`` settings (the test run's clock, ``TELEMED_TEST_*``, is kept), as a child
    process would see them. An exception the command does not handle is raised here, where
    a child would have printed a traceback and failed."""
    overlay: dict[str, str | None] = {
        key: None
        for key in os.environ
        if key.startswith("TELEMED_") and not key.startswith("TELEMED_TEST_")
    }
    overlay.update(env)
    result = CliRunner().invoke(main, list(args), env=overlay, catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)
