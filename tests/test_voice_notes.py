"""Voice notes: real Opus recordings (libopus through PyAV) sent through the resumable
upload, checked on the server by their container, kept with their length, made messages
of the thread, shown on the consult page and the case timeline, refused when not Opus or
too long: on both databases."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from telemed.accounts.models import Role
from telemed.attachments import audio
from telemed.attachments.models import Attachment, Upload, UploadState
from telemed.audit.models import AuditAction
from telemed.errors import ValidationFailed
from telemed.messages.models import Message
from tests.audio_helpers import encode
from tests.conftest import LoginFn
from tests.helpers import ApiClient, Users
from tests.test_attachments import audit_rows, new_consult, send_all
from tests.test_notes import assign

# --- the container readers, on real files -------------------------------------------------


@pytest.mark.parametrize(
    ("container", "live"), [("ogg", False), ("webm", False), ("webm", True)], ids=str
)
def test_the_length_is_read_from_the_container(container: str, live: bool) -> None:
    """Ogg: last granule minus pre-skip; WebM: its Duration, or (a recorder's live file,
    which has none) the last block's time."""
    for seconds in (1.0, 7.5, 61.0):
        data = encode(seconds, container, live=live)
        info = audio.opus_info(data)
        assert (info.container, info.codec) == (container, "opus")
        assert abs(info.duration_ms - seconds * 1000) <= 60, (seconds, info)


def test_a_file_on_disk_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "note.ogg"
    path.write_bytes(encode(3.0, "ogg"))
    assert audio.opus_info(path) == audio.opus_info(path.read_bytes())


def test_what_is_not_opus_or_is_damaged_is_refused_naming_the_file() -> None:
    cases = {
        "FLAC": encode(2.0, "ogg", codec="flac"),
        "cut short": encode(2.0, "ogg")[:-7],
        "not Ogg or WebM": b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 100,
        "no EBML header": b"\x1a\x45\xdf\xa3\x9f" + b"\x00" * 10,
    }
    for what, data in cases.items():
        with pytest.raises(ValidationFailed) as refused:
            audio.opus_info(data)
        assert refused.value.field == "file", what
    with pytest.raises(ValidationFailed, match="FLAC audio, not Opus"):
        audio.opus_info(cases["FLAC"])


def test_three_minutes_with_a_little_slack_and_no_more() -> None:
    audio.check_voice_note(audio.AudioInfo("ogg", "opus", 180_000))
    audio.check_voice_note(audio.AudioInfo("ogg", "opus", 182_000))  # a late auto-stop
    with pytest.raises(ValidationFailed, match="lasts 3:10; at most 3:00") as refused:
        audio.check_voice_note(audio.AudioInfo("ogg", "opus", 190_000))
    assert refused.value.field == "file"


# --- through the API ------------------------------------------------------------------------


def send_voice_note(
    api: ApiClient, consult_id: int, data: bytes, filename: str, media_type: str, **extra: object
) -> tuple[dict[str, object], dict[str, object]]:
    created = api.post(
        f"/api/v1/consults/{consult_id}/uploads",
        {
            "filename": filename,
            "length": len(data),
            "media_type": media_type,
            "voice_note": True,
            **extra,
        },
    )
    assert created.status_code == 201, created.text
    done = send_all(api, created.json()["url"], data)
    return created.json(), {"status": done.status_code, **done.json()}


@pytest.fixture
def pair(login: LoginFn, users: Users, db: Session) -> tuple[ApiClient, ApiClient, int]:
    nurse = login(users.make(Role.clinician))
    specialist_user = users.make(Role.specialist)
    consult_id = new_consult(nurse)
    assign(db, consult_id, specialist_user)
    return nurse, login(specialist_user), consult_id


@pytest.mark.parametrize(
    ("container", "media_type"),
    [("ogg", "audio/ogg"), ("webm", "audio/webm;codecs=opus")],
)
def test_a_voice_note_becomes_a_message_of_the_thread_with_its_length(
    container: str, media_type: str, pair: tuple[ApiClient, ApiClient, int], db: Session
) -> None:
    nurse, specialist, consult_id = pair
    data = encode(42.0, container, live=container == "webm")
    _created, done = send_voice_note(
        specialist, consult_id, data, f"voice-note.{container}", media_type
    )
    assert done["status"] == 200, done
    assert done["state"] == "complete"
    attachment = done["attachment"]
    assert isinstance(attachment, dict)
    assert attachment["kind"] == "audio"
    assert abs(int(attachment["duration_ms"]) - 42_000) <= 60
    assert attachment["message_id"] is not None
    # Stored byte for byte.
    original = nurse.get(str(attachment["original_url"]))
    assert hashlib.sha256(original.content).hexdigest() == hashlib.sha256(data).hexdigest()
    # The thread has a message from the specialist carrying it, read by both sides.
    for reader in (nurse, specialist):
        thread = reader.get(f"/api/v1/consults/{consult_id}/messages").json()
        assert len(thread) == 1
        message = thread[0]
        assert (message["author_id"], message["body"]) == (specialist.user.id, "")
        assert message["id"] == attachment["message_id"]
        assert message["voice_note"]["attachment_id"] == attachment["id"]
        assert message["voice_note"]["duration_ms"] == attachment["duration_ms"]
    # The upload's audit row names the length.
    uploads = audit_rows(db, AuditAction.upload, "attachment")
    assert any("ms)" in row.detail for row in uploads)
    # Consult page: played inline, nothing loaded until played; timeline with its length.
    page = nurse.get(f"/consults/{consult_id}").text
    player = f'<audio controls preload="none" src="/attachments/{attachment["id"]}/original">'
    assert player in page
    assert "voice note · 0:42" in page
    case_id = nurse.get(f"/api/v1/consults/{consult_id}").json()["case"]["id"]
    timeline = nurse.get(f"/cases/{case_id}/timeline").text
    assert "sent a voice note (0:42)" in timeline
    assert player in timeline


def test_a_voice_note_for_an_existing_message_is_attached_to_it(
    pair: tuple[ApiClient, ApiClient, int], db: Session
) -> None:
    nurse, _specialist, consult_id = pair
    message = nurse.post(f"/api/v1/consults/{consult_id}/messages", {"body": "Listen to the cough"})
    _created, done = send_voice_note(
        nurse,
        consult_id,
        encode(5.0, "ogg"),
        "cough.ogg",
        "audio/ogg",
        message_id=message.json()["id"],
    )
    assert done["status"] == 200, done
    db.rollback()
    assert len(db.exec(select(Message).where(Message.consult_id == consult_id)).all()) == 1
    thread = nurse.get(f"/api/v1/consults/{consult_id}/messages").json()
    assert thread[0]["body"] == "Listen to the cough"
    assert thread[0]["voice_note"]["duration_ms"] == pytest.approx(5000, abs=60)


def test_a_voice_note_that_is_not_opus_is_refused_and_nothing_is_kept(
    pair: tuple[ApiClient, ApiClient, int], db: Session
) -> None:
    nurse, _specialist, consult_id = pair
    flac = encode(3.0, "ogg", codec="flac")
    created, done = send_voice_note(nurse, consult_id, flac, "note.ogg", "audio/ogg")
    assert done["status"] == 422
    error = done["error"]
    assert isinstance(error, dict)
    assert error["fields"][0]["field"] == "file"
    assert "FLAC audio, not Opus" in error["message"]
    db.rollback()
    upload = db.get(Upload, created["id"])
    assert upload is not None
    assert upload.state == UploadState.failed
    assert db.exec(select(Attachment).where(Attachment.consult_id == consult_id)).all() == []
    assert db.exec(select(Message).where(Message.consult_id == consult_id)).all() == []
    denied = audit_rows(db, AuditAction.denied, "upload")
    assert [row.object_id for row in denied] == [created["id"]]


def test_a_voice_note_over_three_minutes_is_refused(
    pair: tuple[ApiClient, ApiClient, int], db: Session
) -> None:
    nurse, _specialist, consult_id = pair
    long = encode(190.0, "webm", bitrate=6000)
    _created, done = send_voice_note(nurse, consult_id, long, "long.webm", "audio/webm")
    assert done["status"] == 422
    error = done["error"]
    assert isinstance(error, dict)
    assert error["fields"][0]["field"] == "file"
    assert "at most 3:00" in error["message"]
    db.rollback()
    assert db.exec(select(Message).where(col(Message.consult_id) == consult_id)).all() == []


def test_a_voice_note_must_be_declared_as_ogg_or_webm(
    pair: tuple[ApiClient, ApiClient, int],
) -> None:
    nurse, _specialist, consult_id = pair
    url = f"/api/v1/consults/{consult_id}/uploads"
    m4a = nurse.post(
        url,
        {"filename": "a.m4a", "length": 1000, "media_type": "audio/mp4", "voice_note": True},
    )
    assert m4a.status_code == 422
    assert m4a.json()["error"]["fields"][0]["field"] == "media_type"
    huge = nurse.post(
        url,
        {"filename": "a.ogg", "length": 5_000_000, "media_type": "audio/ogg", "voice_note": True},
    )
    assert huge.status_code == 422
    assert huge.json()["error"]["fields"][0]["field"] == "length"
