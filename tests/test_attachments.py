"""Attachments and resumable uploads, through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from pathlib import Path

import httpx
import pillow_heif
import pytest
from PIL import ExifTags, Image
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select, text

from telemed.accounts.models import Role
from telemed.attachments import media, uploads
from telemed.attachments.models import Attachment, Upload, UploadState
from telemed.audit.models import AuditAction, AuditEntry
from telemed.db import utcnow
from telemed.settings import Settings
from telemed.uow import Units
from telemed.web.assets import ASSETS
from tests.audio_helpers import encode
from tests.conftest import LoginFn, require_service
from tests.helpers import ApiClient, Users, consult_payload

CHUNK_TYPE = "application/offset+octet-stream"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + bytes(range(256)) * 1200 + b"\n%%EOF\n"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x90" * 20000
MZ = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 60 + b"This program cannot be run in DOS mode" * 50
OGG = encode(2.0, "ogg")  # real Opus: the server reads its container for the length
M4A = b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A isom" + b"\x00\x00\x00\x08free" + b"\0" * 3000
WEBM = encode(2.0, "webm", live=True)


# --- making files -------------------------------------------------------------------------


def two_colour_photo(width: int = 200, height: int = 100) -> Image.Image:
    """Left half red, right half blue: shows which way the pixels were turned."""
    image = Image.new("RGB", (width, height), (255, 0, 0))
    image.paste((0, 0, 255), (width // 2, 0, width, height))
    return image


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "ClinicPhone"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "S"
    gps[ExifTags.GPS.GPSLatitude] = (29.0, 18.0, 36.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (27.0, 29.0, 0.0)
    return exif


def jpeg(image: Image.Image, exif: Image.Exif | None = None, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, exif=exif or Image.Exif())
    return out.getvalue()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def heic(image: Image.Image, exif: Image.Exif) -> bytes:
    """An iPhone-like HEIC photo. Needs a pillow-heif built with an encoder (x265): without
    one the test skips, or fails in CI, instead of leaving its HEIC case out unseen."""
    if not pillow_heif.libheif_info().get("HEIF"):
        require_service("pillow-heif's HEIF encoder", "this pillow-heif wheel has none (x265)")
    out = io.BytesIO()
    image.save(out, format="HEIF", quality=60, exif=exif.tobytes())
    return out.getvalue()


def noisy_photo(width: int = 2400, height: int = 1600) -> bytes:
    """High-entropy pixels: the hardest case for a small preview."""
    noise = Image.merge("RGB", [Image.effect_noise((width, height), 60) for _ in range(3)])
    return jpeg(noise, quality=85)


# --- talking to the API -------------------------------------------------------------------


def new_consult(api: ApiClient) -> int:
    response = api.post("/api/v1/consults", consult_payload())
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def start_upload(
    api: ApiClient, consult_id: int, data: bytes, filename: str, media_type: str
) -> httpx.Response:
    return api.post(
        f"/api/v1/consults/{consult_id}/uploads",
        {"filename": filename, "length": len(data), "media_type": media_type},
    )


def patch(api: ApiClient, url: str, offset: int, chunk: bytes) -> httpx.Response:
    return api.client.patch(
        url,
        content=chunk,
        headers={
            "X-CSRF-Token": api.csrf,
            "Upload-Offset": str(offset),
            "Content-Type": CHUNK_TYPE,
        },
    )


def send_all(
    api: ApiClient, url: str, data: bytes, offset: int = 0, chunk: int = 64 * 1024
) -> httpx.Response:
    while True:
        response = patch(api, url, offset, data[offset : offset + chunk])
        if response.status_code != 200 or response.json()["state"] == "complete":
            return response
        assert response.json()["offset"] > offset, f"the upload stopped at {offset}"
        offset = response.json()["offset"]


def upload(
    api: ApiClient, consult_id: int, data: bytes, filename: str, media_type: str
) -> dict[str, object]:
    created = start_upload(api, consult_id, data, filename, media_type)
    assert created.status_code == 201, created.text
    done = send_all(api, created.json()["url"], data)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "complete"
    attachment: dict[str, object] = done.json()["attachment"]
    return attachment


def stored_blob(settings: Settings, sha256: str) -> bytes:
    return (settings.data_dir / "blobs" / sha256[:2] / sha256).read_bytes()


def blob_files(settings: Settings) -> list[Path]:
    root = settings.data_dir / "blobs"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def audit_rows(db: Session, action: AuditAction, object_type: str) -> list[AuditEntry]:
    db.rollback()  # a fresh snapshot: the application wrote these in its own transactions
    return list(
        db.exec(
            select(AuditEntry)
            .where(AuditEntry.action == action, AuditEntry.object_type == object_type)
            .order_by(col(AuditEntry.id))
        )
    )


def attachment_rows(db: Session) -> list[Attachment]:
    db.rollback()
    return list(db.exec(select(Attachment)))


# --- accepted types -----------------------------------------------------------------------


def test_each_accepted_type_is_stored_and_downloadable(
    login: LoginFn, users: Users, settings: Settings
) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse)
    photo = two_colour_photo()
    cases: list[tuple[str, bytes, str, str, str]] = [
        # filename, bytes, declared type, stored type, kind
        ("wound.jpg", jpeg(photo), "image/jpeg", "image/jpeg", "image"),
        ("ecg.png", png(photo), "image/png", "image/png", "image"),
        ("lab.pdf", PDF, "application/pdf", "application/pdf", "pdf"),
        ("cough.ogg", OGG, "audio/ogg", "audio/ogg", "audio"),
        ("cough.m4a", M4A, "audio/x-m4a", "audio/mp4", "audio"),
        ("cough.webm", WEBM, "audio/webm;codecs=opus", "audio/webm", "audio"),
    ]
    for filename, data, declared, stored_type, kind in cases:
        stored_and_downloadable(nurse, consult_id, filename, data, declared, stored_type, kind)
    listed = nurse.get(f"/api/v1/consults/{consult_id}/attachments").json()
    assert [a["filename"] for a in listed] == [
        "wound.jpg",
        "ecg.png",
        "lab.pdf",
        "cough.ogg",
        "cough.m4a",
        "cough.webm",
    ]


def test_a_heic_declared_as_nothing_is_stored_as_a_jpeg(login: LoginFn, users: Users) -> None:
    """Browsers often declare .heic as application/octet-stream: the extension decides."""
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse)
    data = heic(two_colour_photo(), Image.Exif())
    stored_and_downloadable(nurse, consult_id, "IMG_0001.HEIC", data, "", "image/jpeg", "image")
    listed = nurse.get(f"/api/v1/consults/{consult_id}/attachments").json()
    assert [a["filename"] for a in listed] == ["IMG_0001.jpg"]


def stored_and_downloadable(
    nurse: ApiClient,
    consult_id: int,
    filename: str,
    data: bytes,
    declared: str,
    stored_type: str,
    kind: str,
) -> None:
    attachment = upload(nurse, consult_id, data, filename, declared)
    assert attachment["media_type"] == stored_type, filename
    assert attachment["kind"] == kind
    original = nurse.get(str(attachment["original_url"]))
    assert original.status_code == 200
    assert original.headers["content-type"].startswith(stored_type)
    assert original.headers["content-disposition"].startswith("attachment;")
    assert original.headers["x-content-type-options"] == "nosniff"
    assert hashlib.sha256(original.content).hexdigest() == attachment["sha256"]
    if kind == "image":
        preview = nurse.get(str(attachment["preview_url"]))
        assert preview.status_code == 200
        assert preview.headers["content-type"] == "image/jpeg"
        assert len(preview.content) <= media.PREVIEW_MAX_BYTES
    else:  # PDFs and audio are kept byte for byte and have no preview
        assert original.content == data
        assert attachment["preview_url"] is None


def test_heic_becomes_an_upright_jpeg_without_exif(
    login: LoginFn, users: Users, settings: Settings
) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse)
    source = heic(two_colour_photo(), exif_with_gps(orientation=6))
    attachment = upload(nurse, consult_id, source, "rash.heic", "image/heic")
    assert attachment["received_media_type"] == "image/heic"
    assert attachment["filename"] == "rash.jpg"
    stored = stored_blob(settings, str(attachment["sha256"]))
    image = Image.open(io.BytesIO(stored))
    assert image.format == "JPEG"
    assert image.size == (100, 200)  # turned upright
    assert not image.getexif()
    assert b"Exif" not in stored


def test_gps_exif_is_removed_and_orientation_applied(
    login: LoginFn, users: Users, settings: Settings
) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse)
    source = jpeg(two_colour_photo(), exif_with_gps(orientation=6))
    assert Image.open(io.BytesIO(source)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # it is there
    # Through the page's form, as a phone without JavaScript would send it.
    response = nurse.client.post(
        f"/consults/{consult_id}/attachments",
        data={"csrf_token": nurse.csrf},
        files={"file": ("wound.jpeg", source, "image/jpeg")},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/consults/{consult_id}#attachments"
    [attachment] = nurse.get(f"/api/v1/consults/{consult_id}/attachments").json()
    stored = stored_blob(settings, attachment["sha256"])
    image = Image.open(io.BytesIO(stored))
    assert not image.getexif()  # no orientation, no camera make, no GPS
    assert b"Exif" not in stored
    assert b"ClinicPhone" not in stored
    # Orientation 6 means "turn 90° clockwise to view": the stored pixels are upright,
    # so the left (red) half of the sensor image is now on top.
    assert image.size == (100, 200) == (attachment["width"], attachment["height"])
    top, bottom = image.convert("RGB").getpixel((50, 20)), image.convert("RGB").getpixel((50, 180))
    assert isinstance(top, tuple)
    assert isinstance(bottom, tuple)
    assert top[0] > 200
    assert top[2] < 60
    assert bottom[2] > 200
    assert bottom[0] < 60
    preview_bytes = nurse.get(attachment["preview_url"]).content
    assert b"Exif" not in preview_bytes


def test_the_preview_of_a_large_photo_fits_in_30_kb(login: LoginFn, users: Users) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse)
    source = noisy_photo()
    assert len(source) > 1_000_000
    attachment = upload(nurse, consult_id, source, "xray.jpg", "image/jpeg")
    preview = nurse.get(str(attachment["preview_url"]))
    assert preview.status_code == 200
    assert len(preview.content) <= media.PREVIEW_MAX_BYTES
    assert attachment["preview_size_bytes"] == len(preview.content)
    width, height = Image.open(io.BytesIO(preview.content)).size
    assert width / height == pytest.approx(2400 / 1600, rel=0.02)


# --- refused input ------------------------------------------------------------------------


def test_an_executable_named_pdf_is_refused_and_nothing_is_kept(
    login: LoginFn, users: Users, settings: Settings, db: Session
) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse)

    # Resumable: refused at the first chunk, before the rest is sent over 2G.
    created = start_upload(nurse, consult_id, ELF, "results.pdf", "application/pdf")
    assert created.status_code == 201
    url = created.json()["url"]
    refused = patch(nurse, url, 0, ELF[:16384])
    assert refused.status_code == 422
    message = refused.json()["error"]["message"]
    assert "declared as PDF" in message
    assert "Linux program (ELF)" in message
    state = nurse.get(url).json()
    assert state["state"] == "failed"
    assert "ELF" in state["failure"]
    assert patch(nurse, url, 16384, ELF[16384:]).status_code == 409  # a failed upload is over

    # Small chunks: the check happens at finalization, with the same outcome.
    created = start_upload(nurse, consult_id, MZ, "scan.pdf", "application/pdf")
    late = send_all(nurse, created.json()["url"], MZ, chunk=500)
    assert late.status_code == 422
    assert "Windows program (EXE)" in late.json()["error"]["message"]
    assert nurse.get(created.json()["url"]).json()["state"] == "failed"

    # The form without JavaScript: the error is shown next to the file field.
    page = nurse.client.post(
        f"/consults/{consult_id}/attachments",
        data={"csrf_token": nurse.csrf},
        files={"file": ("report.pdf", MZ, "application/pdf")},
    )
    assert page.status_code == 422
    assert "Windows program (EXE)" in page.text
    assert 'role="alert"' in page.text

    assert attachment_rows(db) == []
    assert blob_files(settings) == []
    assert list((settings.data_dir / "uploads").glob("*.part")) == []
    denied = audit_rows(db, AuditAction.denied, "upload") + audit_rows(
        db, AuditAction.denied, "attachment"
    )
    assert len(denied) == 3
    assert all(row.consult_id == consult_id for row in denied)


def test_declared_types_must_agree_and_be_accepted(login: LoginFn, users: Users) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse)
    for filename, media_type, field, words in [
        ("virus.exe", "application/octet-stream", "filename", "ending in .exe"),
        ("photo.gif", "image/gif", "filename", "ending in .gif"),
        ("photo.jpg", "application/pdf", "media_type", "file name says JPEG"),
        ("notes", "text/plain", "media_type", "text/plain are not accepted"),
        ("noextension", "", "filename", "name the file with its extension"),
    ]:
        response = nurse.post(
            f"/api/v1/consults/{consult_id}/uploads",
            {"filename": filename, "length": 10, "media_type": media_type},
        )
        assert response.status_code == 422, filename
        error = response.json()["error"]
        assert error["fields"][0]["field"] == field
        assert words in error["message"]
    # A PNG's bytes under a .jpg name are refused too: the bytes must be what is declared.
    created = start_upload(nurse, consult_id, png(two_colour_photo()), "x.jpg", "image/jpeg")
    refused = send_all(nurse, created.json()["url"], png(two_colour_photo()))
    assert refused.status_code == 422
    assert "declared as JPEG but its content is a PNG file" in refused.json()["error"]["message"]


def test_a_file_over_the_limit_is_refused(
    login: LoginFn, users: Users, settings: Settings, db: Session
) -> None:
    settings.max_upload_bytes = 50_000  # the apps of this test share this settings object
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse)
    big = PDF[:10] + b"x" * 60_000
    response = start_upload(nurse, consult_id, big, "big.pdf", "application/pdf")
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "length"
    assert "the file is 59 KB" in response.json()["error"]["message"]
    assert "the limit is 49 KB" in response.json()["error"]["message"]
    page = nurse.client.post(
        f"/consults/{consult_id}/attachments",
        data={"csrf_token": nurse.csrf},
        files={"file": ("big.pdf", big, "application/pdf")},
    )
    assert page.status_code == 422
    assert "the limit is 49 KB" in page.text
    # A chunk cannot carry an upload past its declared length either.
    created = start_upload(nurse, consult_id, PDF[:1000], "small.pdf", "application/pdf")
    past = patch(nurse, created.json()["url"], 0, PDF[:1001])
    assert past.status_code == 422
    assert "past the declared length" in past.json()["error"]["message"]
    assert attachment_rows(db) == []
    assert blob_files(settings) == []


# --- resuming -----------------------------------------------------------------------------


def test_an_interrupted_upload_resumes_and_keeps_the_exact_bytes(
    login: LoginFn, users: Users, settings: Settings, db: Session
) -> None:
    nurse_user = users.make(Role.clinician)
    nurse = login(nurse_user)
    consult_id = new_consult(nurse)
    data = PDF
    created = start_upload(nurse, consult_id, data, "culture.pdf", "application/pdf")
    assert created.status_code == 201
    body = created.json()
    assert body["offset"] == 0
    assert body["state"] == "open"
    url = body["url"]
    assert created.headers["location"] == url
    chunk = 50_000
    for offset in (0, chunk, 2 * chunk):
        sent = patch(nurse, url, offset, data[offset : offset + chunk])
        assert sent.status_code == 200
        assert sent.headers["upload-offset"] == str(offset + chunk)
    # The link drops; the page is reloaded (a new login session of the same clinician).
    assert attachment_rows(db) == []  # half an upload is not an attachment
    assert nurse.get(f"/api/v1/consults/{consult_id}/attachments").json() == []
    resumed = login(nurse_user)
    head = resumed.client.head(url)
    assert head.status_code == 200
    assert head.headers["upload-offset"] == str(3 * chunk)
    assert head.headers["upload-length"] == str(len(data))
    assert head.headers["upload-state"] == "open"
    # A retry of a chunk that had in fact arrived is told where the server is.
    stale = patch(resumed, url, 2 * chunk, data[2 * chunk : 3 * chunk])
    assert stale.status_code == 409
    assert stale.headers["upload-offset"] == str(3 * chunk)
    done = send_all(resumed, url, data, offset=int(head.headers["upload-offset"]))
    assert done.status_code == 200, done.text
    finished = done.json()
    assert finished["state"] == "complete"
    assert finished["offset"] == len(data)
    digest = hashlib.sha256(data).hexdigest()
    assert finished["attachment"]["sha256"] == digest
    assert hashlib.sha256(stored_blob(settings, digest)).hexdigest() == digest
    assert resumed.get(finished["attachment"]["original_url"]).content == data
    assert not (settings.data_dir / "uploads" / f"{finished['id']}.part").exists()
    [row] = attachment_rows(db)
    assert row.sha256 == digest
    assert row.size_bytes == len(data)
    [audited] = audit_rows(db, AuditAction.upload, "attachment")
    assert audited.object_id == str(row.id)
    assert audited.actor_id == nurse_user.id
    # The same file again is a second attachment but the same single blob on disk.
    again = upload(nurse, consult_id, data, "culture-copy.pdf", "application/pdf")
    assert again["sha256"] == digest
    assert again["id"] != row.id
    assert len(blob_files(settings)) == 1


def test_a_chunk_at_the_wrong_offset_is_refused_without_damage(
    login: LoginFn, users: Users, settings: Settings
) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse)
    data = PDF[:120_000]
    url = start_upload(nurse, consult_id, data, "a.pdf", "application/pdf").json()["url"]
    assert patch(nurse, url, 0, data[:40_000]).status_code == 200
    for wrong in (0, 20_000, 80_000):
        refused = patch(nurse, url, wrong, b"\xff" * 40_000)
        assert refused.status_code == 409
        assert refused.headers["upload-offset"] == "40000"
        error = refused.json()["error"]
        assert error["code"] == "offset_mismatch"
        assert f"sent at offset {wrong}" in error["message"]
        assert "offset 40000" in error["message"]
    assert nurse.client.head(url).headers["upload-offset"] == "40000"
    missing_header = nurse.client.patch(
        url, content=b"x", headers={"X-CSRF-Token": nurse.csrf, "Content-Type": CHUNK_TYPE}
    )
    assert missing_header.status_code == 422
    wrong_type = nurse.client.patch(
        url,
        content=b"x",
        headers={
            "X-CSRF-Token": nurse.csrf,
            "Upload-Offset": "40000",
            "Content-Type": "text/plain",
        },
    )
    assert wrong_type.status_code == 415
    no_csrf = nurse.client.patch(
        url, content=b"x", headers={"Upload-Offset": "40000", "Content-Type": CHUNK_TYPE}
    )
    assert no_csrf.status_code == 403
    done = send_all(nurse, url, data, offset=40_000)
    assert done.status_code == 200
    assert stored_blob(settings, done.json()["attachment"]["sha256"]) == data


def test_only_the_uploader_may_continue_and_uploads_expire(
    login: LoginFn, users: Users, settings: Settings, db: Session, units: Units
) -> None:
    nurse = login(users.make(Role.clinician))
    colleague = login(users.make(Role.clinician))  # same facility: sees the consult
    consult_id = new_consult(nurse)
    url = start_upload(nurse, consult_id, PDF, "a.pdf", "application/pdf").json()["url"]
    assert patch(nurse, url, 0, PDF[:10_000]).status_code == 200
    assert colleague.client.head(url).status_code == 404
    assert patch(colleague, url, 10_000, PDF[10_000:20_000]).status_code == 404
    assert [r.detail for r in audit_rows(db, AuditAction.denied, "upload")] == [
        "only the uploader may continue an upload"
    ] * 2
    part = settings.data_dir / "uploads" / f"{url.rsplit('/', 1)[1]}.part"
    assert part.stat().st_size == 10_000

    with units.one() as session:  # as the periodic job runs it
        expired = uploads.expire_stale_uploads(
            session, settings, now=utcnow() + timedelta(hours=25)
        )
    assert expired == 1
    assert not part.exists()
    assert nurse.client.head(url).status_code == 410
    gone = patch(nurse, url, 10_000, PDF[10_000:20_000])
    assert gone.status_code == 410
    assert "expired" in gone.json()["error"]["message"]
    db.rollback()
    [row] = db.exec(select(Upload))
    assert row.state == UploadState.expired
    assert row.attachment_id is None
    assert attachment_rows(db) == []


# --- who may download ---------------------------------------------------------------------


def test_downloads_are_for_people_on_the_consult_and_always_audited(
    login: LoginFn, users: Users, db: Session
) -> None:
    nurse_user = users.make(Role.clinician, "MOTEBANG")
    nurse = login(nurse_user)
    consult_id = new_consult(nurse)
    attachment = upload(nurse, consult_id, jpeg(two_colour_photo()), "eye.jpg", "image/jpeg")
    attachment_id = attachment["id"]
    coordinator_user = users.make(Role.coordinator)
    coordinator = login(coordinator_user)

    got = coordinator.get(f"/api/v1/attachments/{attachment_id}/original")
    assert got.status_code == 200
    page_preview = nurse.get(f"/attachments/{attachment_id}/preview")
    assert page_preview.status_code == 200
    assert page_preview.headers["content-disposition"] == 'attachment; filename="eye-preview.jpg"'
    again = coordinator.client.get(
        f"/api/v1/attachments/{attachment_id}/original",
        headers={"If-None-Match": got.headers["etag"]},
    )
    assert again.status_code == 304
    assert again.content == b""
    downloads = audit_rows(db, AuditAction.download, "attachment")
    assert [(r.actor_id, r.detail, r.consult_id) for r in downloads] == [
        (coordinator_user.id, "original", consult_id),
        (nurse_user.id, "preview", consult_id),
        (coordinator_user.id, "original", consult_id),
    ]

    outsider_user = users.make(Role.clinician, "PARAY")
    outsider = login(outsider_user)
    for path in (
        f"/api/v1/attachments/{attachment_id}/original",
        f"/api/v1/attachments/{attachment_id}/preview",
        f"/api/v1/attachments/{attachment_id}",
        f"/attachments/{attachment_id}/original",
    ):
        refused = outsider.get(path)
        assert refused.status_code == 404, path
        assert "eye" not in refused.text
    assert outsider.get("/api/v1/attachments/999999/original").status_code == 404
    denied = audit_rows(db, AuditAction.denied, "attachment")
    assert len(denied) == 4
    assert {(r.actor_id, r.object_id, r.consult_id) for r in denied} == {
        (outsider_user.id, str(attachment_id), consult_id)
    }
    assert "download of the original refused" in denied[0].detail
    assert len(audit_rows(db, AuditAction.download, "attachment")) == 3  # unchanged
    assert outsider.get(f"/api/v1/consults/{consult_id}/attachments").status_code == 404
    upload_attempt = start_upload(outsider, consult_id, PDF, "x.pdf", "application/pdf")
    assert upload_attempt.status_code == 404


# --- the consult page, messages, the record ------------------------------------------------


def test_the_consult_page_lists_attachments_and_offers_the_form(
    login: LoginFn, users: Users
) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse)
    photo = upload(nurse, consult_id, jpeg(two_colour_photo()), "wound.jpg", "image/jpeg")
    pdf = upload(nurse, consult_id, PDF, "lab.pdf", "application/pdf")
    page = nurse.get(f"/consults/{consult_id}")
    assert page.status_code == 200
    html = page.text
    # Phone-first: the thread and its reply box come before the case's files.
    assert html.index('id="thread"') < html.index('id="attachments"')
    assert f'<img src="/attachments/{photo["id"]}/preview"' in html
    assert 'loading="lazy"' in html
    assert f'href="/attachments/{photo["id"]}/original"' in html
    assert f'<a href="/attachments/{pdf["id"]}/original">lab.pdf</a> · 300 KB · PDF' in html
    assert 'enctype="multipart/form-data"' in html
    assert 'name="csrf_token"' in html
    assert f'<script type="module" src="{ASSETS.url("upload.js")}"></script>' in html
    assert "<script>" not in html  # CSP: script-src 'self'
    scripts = [nurse.get("/static/upload.js"), nurse.get("/static/uploader.js")]
    assert [script.status_code for script in scripts] == [200, 200]
    assert sum(len(script.content) for script in scripts) < 12_000
    empty = nurse.client.post(
        f"/consults/{consult_id}/attachments",
        data={"csrf_token": nurse.csrf},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert empty.status_code == 422
    assert "choose a file to attach" in empty.text


def test_attachments_on_a_message_of_the_same_consult_only(login: LoginFn, users: Users) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse)
    other_consult_id = new_consult(nurse)
    message = nurse.post(f"/api/v1/consults/{consult_id}/messages", {"body": "ECG attached"})
    message_id = message.json()["id"]
    created = nurse.post(
        f"/api/v1/consults/{consult_id}/uploads",
        {"filename": "ecg.pdf", "length": len(PDF), "message_id": message_id},
    )
    assert created.status_code == 201
    done = send_all(nurse, created.json()["url"], PDF, chunk=len(PDF))
    assert done.json()["attachment"]["message_id"] == message_id
    wrong = nurse.post(
        f"/api/v1/consults/{other_consult_id}/uploads",
        {"filename": "ecg.pdf", "length": len(PDF), "message_id": message_id},
    )
    assert wrong.status_code == 422
    assert wrong.json()["error"]["fields"][0]["field"] == "message_id"
    nurse.post(f"/api/v1/consults/{other_consult_id}/cancel", {"reason": "duplicate"})
    closed = start_upload(nurse, other_consult_id, PDF, "late.pdf", "application/pdf")
    assert closed.status_code == 409
    assert "cancelled" in closed.json()["error"]["message"]


def test_attachment_rows_are_append_only(login: LoginFn, users: Users, db: Session) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = new_consult(nurse)
    upload(nurse, consult_id, PDF, "lab.pdf", "application/pdf")
    db.rollback()
    for statement in (
        "UPDATE attachments SET filename = 'other.pdf'",
        "DELETE FROM attachments",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            db.execute(text(statement))
        db.rollback()
    assert [a.filename for a in attachment_rows(db)] == ["lab.pdf"]
