"""Photos attached on the consult request form itself without JavaScript: one multipart
post makes the consult and its attachments; a refused photo leaves no consult."""

from __future__ import annotations

import io

from PIL import Image
from sqlmodel import Session, func, select

from telemed.accounts.models import Role
from telemed.attachments.models import Attachment
from telemed.consults.models import Consult
from tests.conftest import LoginFn
from tests.helpers import Users
from tests.test_form_errors import _error_of
from tests.test_pages import form_fields


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 90, 60)).save(out, "JPEG")
    return out.getvalue()


def test_photos_posted_with_the_request_are_attached(
    users: Users, login: LoginFn, db: Session
) -> None:
    api = login(users.make(Role.clinician))
    form = api.client.get("/consults/new").text
    assert 'enctype="multipart/form-data"' in form
    assert 'name="photos"' in form
    fields = {**form_fields(), "csrf_token": api.csrf}

    refused = api.client.post(
        "/consults/new",
        data=fields,
        files=[("photos", ("notes.txt", b"not a photo", "text/plain"))],
    )
    assert refused.status_code == 422
    assert _error_of(refused.text, "photos").startswith("notes.txt: ")
    db.rollback()
    assert db.exec(select(func.count()).select_from(Consult)).one() == 0

    made = api.client.post(
        "/consults/new",
        data=fields,
        files=[
            ("photos", ("wound.jpg", _jpeg(), "image/jpeg")),
            ("photos", ("wound-close.jpg", _jpeg(), "image/jpeg")),
        ],
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    consult_id = int(made.headers["location"].rsplit("/", 1)[1])
    db.rollback()
    attached = db.exec(select(Attachment).where(Attachment.consult_id == consult_id)).all()
    assert sorted(a.filename for a in attached) == ["wound-close.jpg", "wound.jpg"]
    assert "wound.jpg" in api.client.get(made.headers["location"]).text
