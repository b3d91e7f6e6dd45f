"""Word-level differences between two versions of a note, for the timeline."""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

from telemed.notes.schemas import NotePublic

DIFFED_FIELDS = (
    ("subjective", "Subjective"),
    ("objective", "Objective"),
    ("assessment", "Assessment"),
    ("plan", "Plan"),
    ("diagnoses", "Diagnoses"),
    ("follow_up", "Follow-up"),
)


@dataclass(frozen=True)
class Segment:
    kind: str  # "same", "removed" or "added"
    text: str


@dataclass(frozen=True)
class FieldDiff:
    label: str
    segments: list[Segment]


def _tokens(text: str) -> list[str]:
    return re.findall(r"\s+|[^\s]+", text)


def diff_text(old: str, new: str) -> list[Segment]:
    a, b = _tokens(old), _tokens(new)
    segments: list[Segment] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            segments.append(Segment("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            segments.append(Segment("removed", "".join(a[i1:i2])))
        if j2 > j1:
            segments.append(Segment("added", "".join(b[j1:j2])))
    return segments


def _field_text(note: NotePublic, field: str) -> str:
    if field == "diagnoses":
        return "; ".join(f"{d.code} {d.title}" for d in note.diagnoses)
    if field == "follow_up":
        when = note.follow_up_on.isoformat() if note.follow_up_on else ""
        return f"{when} {note.follow_up_instruction}".strip()
    return str(getattr(note, field))


def diff_versions(old: NotePublic, new: NotePublic) -> list[FieldDiff]:
    """Only the fields that changed."""
    changes = []
    for field, label in DIFFED_FIELDS:
        before, after = _field_text(old, field), _field_text(new, field)
        if before != after:
            changes.append(FieldDiff(label, diff_text(before, after)))
    return changes
