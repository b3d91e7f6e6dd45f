"""The database side of the audit chain, shared by the migrations that change it.

Up to 0010 every writer chained its own audit row under one advisory lock
(``telemed_audit_lock_head``) and the table refused any update. From 0011 rows are
inserted unsealed and a sealer chains them: the guard below lets a row be born only
unsealed and be updated only once, by the sealing (its ``seq``, ``prev_hash`` and
``row_hash`` from empty to set, nothing else changed), and never deleted.
"""

from __future__ import annotations

from alembic import op

# 0002's function, recreated when 0011 is downgraded. The function is VOLATILE, so the
# SELECT takes a fresh snapshot after the lock is held and sees the latest head.
LOCK_AND_READ_HEAD = """
CREATE OR REPLACE FUNCTION telemed_audit_lock_head(lock_key bigint, relaxed boolean)
RETURNS TABLE (head_id integer, head_hash varchar) AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(lock_key);
  IF relaxed THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  RETURN QUERY SELECT a.id, a.row_hash::varchar FROM audit_log a ORDER BY a.id DESC LIMIT 1;
END $$ LANGUAGE plpgsql VOLATILE
"""

CONTENT = (
    "id",
    "at",
    "actor_id",
    "actor_role",
    "action",
    "object_type",
    "object_id",
    "case_id",
    "consult_id",
    "client_address",
    "detail",
)
# From 0013 the request id is content too: the sealing must not change it either.
CONTENT_0013 = (*CONTENT, "request_id")
CHAIN = ("seq", "prev_hash", "row_hash")
APPEND_ONLY = "table audit_log is append-only: only the sealer may seal an unsealed row, once"
BORN_UNSEALED = "audit_log rows are inserted unsealed: only the sealer chains them"


def _all(template: str, columns: tuple[str, ...], joiner: str = " AND ") -> str:
    return joiner.join(template.format(c=c) for c in columns)


def _sealing_only(same: str, content: tuple[str, ...]) -> str:
    """The condition of the one allowed update, ``same`` comparing NEW and OLD null-safely."""
    was_unsealed = _all("OLD.{c} IS NULL", CHAIN)
    now_sealed = _all("NEW.{c} IS NOT NULL", CHAIN)
    return f"{was_unsealed} AND {now_sealed} AND {_all(same, content)}"


def pg_guard(content: tuple[str, ...]) -> str:
    return f"""
CREATE OR REPLACE FUNCTION telemed_audit_log_guard() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF {_all("NEW.{c} IS NULL", CHAIN)} THEN
      RETURN NEW;
    END IF;
    RAISE EXCEPTION '{BORN_UNSEALED}';
  END IF;
  IF TG_OP = 'UPDATE' AND {_sealing_only("NEW.{c} IS NOT DISTINCT FROM OLD.{c}", content)} THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION '{APPEND_ONLY}';
END $$ LANGUAGE plpgsql
"""


def sqlite_guards(content: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """The names of 0002's triggers, so that whoever disables "the append-only trigger" by
    name (an operator, the tamper tests) still finds it."""
    return {
        "audit_log_no_update": (
            f"BEFORE UPDATE ON audit_log WHEN NOT ({_sealing_only('NEW.{c} IS OLD.{c}', content)})",
            APPEND_ONLY,
        ),
        "audit_log_no_delete": ("BEFORE DELETE ON audit_log", APPEND_ONLY),
        "audit_log_born_unsealed": (
            f"BEFORE INSERT ON audit_log WHEN NOT ({_all('NEW.{c} IS NULL', CHAIN)})",
            BORN_UNSEALED,
        ),
    }


def guard_sealing(content: tuple[str, ...] = CONTENT) -> None:
    """Install the guard for the audit_log of a revision whose content columns are
    ``content`` (0011: ``CONTENT``; from 0013: ``CONTENT_0013``)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(pg_guard(content))
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE INSERT OR UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION telemed_audit_log_guard()"
        )
    else:
        for name, (when, message) in sqlite_guards(content).items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN SELECT RAISE(ABORT, '{message}'); END")


def unguard_sealing() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS telemed_audit_log_guard()")
    else:
        for name in sqlite_guards(CONTENT):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
