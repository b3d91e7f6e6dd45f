"""How ``telemed serve`` runs uvicorn: its logging, and the multi-process metrics mode.

With ``--workers N`` uvicorn starts N processes, each with its own memory, and a scrape of
``/metrics`` reaches one of them. prometheus-client's multi-process mode makes every worker
write its metrics to files in ``PROMETHEUS_MULTIPROC_DIR`` and sums them at scrape; the
directory must be emptied before the workers start (files of a previous run would be added
in) and must be set in the environment before a worker imports prometheus-client, which is
why it is set here, in the parent, before uvicorn spawns them.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import click

from telemed.observability.logs import LogFormat, configure, log_config
from telemed.observability.metrics import MULTIPROC_ENV
from telemed.settings import Settings


def check_workers(settings: Settings, workers: int) -> None:
    """Refuse ``--workers N`` (N > 1) where it would be wrong, with what to do instead.

    SQLite has one write lock per database: several processes would only queue on it (and a
    writer waiting in another process cannot be put in order, as the writers of one process
    are: ``telemed.uow``). Without Redis, two participants of one call whose sockets reached
    different workers would never see each other: ``/ws/signal`` shares rooms through it.
    """
    if workers <= 1:
        return
    if settings.is_sqlite:
        raise click.UsageError(
            "--workers needs PostgreSQL (TELEMED_DATABASE_URL=postgresql+psycopg://...): "
            "SQLite has a single writer, so more processes add no capacity. Run one worker "
            "on SQLite (it serves about 100 active users: docs/RELIABILITY.md)."
        )
    if not settings.redis_url:
        raise click.UsageError(
            "--workers needs TELEMED_REDIS_URL: the call signalling (/ws/signal) of several "
            "workers shares its rooms through Redis."
        )


def trusted_proxies(value: str | None) -> str | None:
    """``--forwarded-allow-ips``: the peers whose ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` uvicorn believes (the client address of the audit trail and the
    login throttling, and https for the signalling URL). Comma-separated addresses or
    networks, or ``*``; None leaves uvicorn's default ($FORWARDED_ALLOW_IPS, else
    127.0.0.1: nginx on the same host). uvicorn would take a mistyped address as a literal
    name that never matches, and every request would seem to come from nginx: refused here.
    """
    if value is None or value.strip() == "*":
        return value
    items = [item.strip() for item in value.split(",")]
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise click.BadParameter(
                f"{item!r} is not an IP address or network (e.g. 10.20.0.5 or 10.20.0.0/24)",
                param_hint="--forwarded-allow-ips",
            ) from None
    return ",".join(items)


def prepare_multiprocess(data_dir: Path, workers: int) -> Path | None:
    """Set up the metrics directory when there are several workers (or the operator set
    ``PROMETHEUS_MULTIPROC_DIR`` anyway): default ``<data_dir>/prometheus-multiproc``,
    emptied of a previous run's files. Returns the directory, or None in single-process mode.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if workers <= 1 and not given:
        return None
    directory = Path(given) if given else (data_dir / "prometheus-multiproc").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def uvicorn_logging(log_format: LogFormat | str) -> dict[str, Any]:
    """Configure this process's logging and return uvicorn's logging options, so that each
    worker logs the same way; uvicorn's access log is off (we log one line per request)."""
    configure(log_format)
    return {"log_config": log_config(log_format), "access_log": False}
