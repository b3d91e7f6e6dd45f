"""Backups of the database and the attachment store (docs/backup.md): ``telemed backup``,
``telemed restore`` and the scheduled job with its retention."""
