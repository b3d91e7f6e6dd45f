"""The scheduled backup: once a day (UTC), the first run after midnight makes an archive in
``TELEMED_BACKUP_DIR``, then retention deletes the archives it does not keep. Off while
the directory is unset. The job runs every hour, so a day whose backup failed (a full
disk, PostgreSQL restarting) is tried again at the next run; a day that has one is not
backed up twice, whichever scheduler leader runs it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from telemed.backup.service import backups_in, create_backup, prune
from telemed.settings import Settings
from telemed.uow import Units

log = logging.getLogger(__name__)


def daily_backup(units: Units, settings: Settings, now: datetime) -> str | None:
    """What was done (for the runner's log), or None when backups are off or today's
    archive exists and retention deleted nothing."""
    directory = settings.backup_dir
    if directory is None:
        return None
    today = now.astimezone(UTC).date()
    done: list[str] = []
    if all(at.date() != today for at in backups_in(directory).values()):
        made = create_backup(units, settings.data_dir, directory, now)
        done.append(f"made {made.name}")
    gone = prune(directory, settings.backup_keep_daily, settings.backup_keep_weekly, now)
    if gone:
        log.info("backups deleted by retention: %s", ", ".join(gone))
        done.append(f"deleted {len(gone)}")
    return "; ".join(done) or None
