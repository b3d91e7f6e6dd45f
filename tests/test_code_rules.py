"""House rules that a reviewer would otherwise have to catch by eye, checked on the source.

The rules read the syntax tree, not the text, so a docstring that names a pattern (db.pk
explains why ``row.id or 0`` went) is not a finding, and each rule is shown to catch a
small sample so it cannot pass by finding nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "telemed"


def _sources() -> Iterator[tuple[str, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield str(path.relative_to(ROOT)), path.read_text()


def _is_id(node: ast.expr) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "id" or node.attr.endswith("_id")
    if isinstance(node, ast.Name):
        return node.id == "id" or node.id.endswith("_id")
    return False


def _id_or_zero(source: str) -> list[int]:
    """Lines where an id falls back to 0 (``x.id or 0``, ``x.parent_id or 0``): a row never
    flushed, or a missing reference, would silently query id 0. ``db.pk(row)`` fails loudly."""
    return sorted(
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.BoolOp)
        and isinstance(node.op, ast.Or)
        and isinstance(node.values[-1], ast.Constant)
        and node.values[-1].value == 0
        and any(_is_id(v) for v in node.values[:-1])
    )


def test_the_id_rule_catches_a_sample() -> None:
    sample = (
        '"""A docstring may say x.id or 0."""\n'
        "a = consult.id or 0\n"
        "b = rows[0].user.id or 0\n"
        "c = attachment.message_id or 0\n"
        "d = count or 0\n"
        "e = pk(consult)\n"
    )
    assert _id_or_zero(sample) == [2, 3, 4]


def test_no_id_falls_back_to_zero() -> None:
    found = [f"{name}:{line}" for name, source in _sources() for line in _id_or_zero(source)]
    assert not found, f"use telemed.db.pk(row) instead of `x.id or 0`: {found}"


# Where the settings may be read from the environment: the entry points that own a process
# (the app factory, the command line, Alembic's env) and the module that defines them.
SETTINGS_READERS = frozenset(
    {"telemed/settings.py", "telemed/app.py", "telemed/cli.py", "telemed/migrations/env.py"}
)


def _reads_settings(source: str) -> list[int]:
    """Lines that build or fetch the global settings (``get_settings()``, ``Settings(...)``,
    ``Settings.model_validate(...)``): a service doing so ignores the settings its caller
    (a test, a job, a request of another app) handed in."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        on_class = (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "Settings"
        )
        if name in ("get_settings", "Settings") or on_class:
            found.append(node.lineno)
    return sorted(found)


def test_the_settings_rule_catches_a_sample() -> None:
    sample = (
        "def f(settings: Settings = None) -> None:\n"
        "    a = get_settings()\n"
        "    b = settings_module.get_settings().slot_minutes\n"
        "    c = Settings(env='test')\n"
        "    d = Settings.model_validate({})\n"
        "    e = settings.model_copy()\n"
        "    f = OfferPolicy.from_settings(settings)\n"
    )
    assert _reads_settings(sample) == [2, 3, 4, 5]


def test_only_the_entry_points_read_the_settings() -> None:
    found = [
        f"{name}:{line}"
        for name, source in _sources()
        if name not in SETTINGS_READERS
        for line in _reads_settings(source)
    ]
    assert not found, f"take the settings as a parameter (SettingsDep in a view): {found}"
