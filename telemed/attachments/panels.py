"""The attachments section of the consult page (``templates/_attachments.html``). Not a
view: the consult page's builder imports it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from telemed.attachments import media, service
from telemed.consults.lifecycle import FINAL_STATES
from telemed.consults.models import Consult, ConsultState
from telemed.db import pk
from telemed.i18n import gettext
from telemed.settings import Settings


@dataclass(frozen=True)
class PanelItem:
    id: int
    filename: str
    kind: str
    size: str
    original_url: str
    preview_url: str | None
    uploader_name: str
    created_at: datetime
    width: int | None
    height: int | None
    duration_ms: int | None


@dataclass(frozen=True)
class Panel:
    """What ``templates/_attachments.html`` shows."""

    items: list[PanelItem]
    can_attach: bool
    accept: str
    max_bytes: int
    max_size: str
    accepted: str


def panel(db: Session, settings: Settings, consult: Consult) -> Panel:
    items = [
        PanelItem(
            id=pk(a),
            filename=a.filename,
            kind=a.kind,
            size=media.format_size(a.size_bytes),
            original_url=f"/attachments/{a.id}/original",
            preview_url=f"/attachments/{a.id}/preview" if a.preview_sha256 else None,
            uploader_name=listed.uploader_name,
            created_at=a.created_at,
            width=a.width,
            height=a.height,
            duration_ms=a.duration_ms,
        )
        for listed in service.attachments_of(db, consult)
        for a in [listed.attachment]
    ]
    return Panel(
        items=items,
        can_attach=ConsultState(consult.state) not in FINAL_STATES,
        accept=media.ACCEPT_ATTRIBUTE,
        max_bytes=settings.max_upload_bytes,
        max_size=media.format_size(settings.max_upload_bytes),
        accepted=gettext(media.ACCEPTED_SUMMARY),  # made with the page: its reader's language
    )
