"""Seeding the coordinator dashboard's benchmark database: N consults over two years across
200 facilities, with every row the uptake indicators read, in set-based SQL.

Why SQL and not the services: a million consults through the ORM take hours; one
``INSERT … SELECT … FROM generate_series`` per table takes a few minutes on two cores.
Values are pseudo-random but deterministic (``hashint8extended`` of the consult's number
and a salt), so two seeds of the same size are the same data. A consult's whole life is
decided once in ``bench_plan`` (its fate: draft, cancelled, escalated, answered by
messages, seen in a call, a no-show, or still waiting), and every table is derived from
it, so the indicators find a realistic spread: waits with long tails, outcomes, follow-ups
done and not, calls that dropped and switched to audio-only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, text

#: The two years seeded: Maseru 1 December 2024 up to 1 December 2026.
START = datetime(2024, 11, 30, 22, 0, tzinfo=UTC)
DAYS = 730
FACILITIES = 200
DISTRICTS = 10
SPECIALISTS = 300
SEED_VERSION = 1

_U = "(hashint8extended({i}::bigint, {salt}) & 2147483647)::float8 / 2147483648.0"


def u(i: str, salt: int) -> str:
    """A deterministic uniform [0, 1) number for row ``i`` (an SQL expression)."""
    return _U.format(i=i, salt=salt)


def _statements(n: int) -> list[tuple[str, str]]:
    t0 = f"timestamptz '{START.isoformat()}'"
    n_tests = max(1, n // 5)
    codes = "(SELECT array_agg(code ORDER BY code) FROM specialties WHERE active)"  # 23 in the seed
    return [
        (
            "districts and facilities",
            f"""
            INSERT INTO districts (id, code, name)
            SELECT d, 'BD' || lpad(d::text, 2, '0'), 'Bench district ' || d
            FROM generate_series(1, {DISTRICTS}) d;
            INSERT INTO facilities (id, code, name, kind, district_id)
            SELECT f, 'BF' || lpad(f::text, 3, '0'), 'Bench facility ' || f,
                   CASE WHEN f % 10 = 0 THEN 'hospital' ELSE 'health_centre' END,
                   1 + (f - 1) % {DISTRICTS}
            FROM generate_series(1, {FACILITIES}) f;
            """,
        ),
        (
            "users, specialists, windows",
            f"""
            INSERT INTO users (id, email, full_name, role, facility_id, timezone, password_hash,
                               is_active, created_at)
            SELECT g,
                   CASE WHEN g <= {FACILITIES} THEN 'clinician' || g
                        WHEN g <= {FACILITIES + SPECIALISTS} THEN 'specialist' || g
                        ELSE 'coordinator' END || '@bench.example',
                   'Bench user ' || g,
                   CASE WHEN g <= {FACILITIES} THEN 'clinician'
                        WHEN g <= {FACILITIES + SPECIALISTS} THEN 'specialist'
                        ELSE 'coordinator' END,
                   CASE WHEN g <= {FACILITIES} THEN g END,
                   'Africa/Maseru', 'x', true, {t0}
            FROM generate_series(1, {FACILITIES + SPECIALISTS + 1}) g;
            INSERT INTO specialist_profiles (user_id, sub_specialties, languages, country,
                registration_body, registration_number, registration_expires_on, bio, status,
                verified_at, verification_note, rejection_reason, weekly_cap, away,
                min_notice_minutes, registered_from, created_at, updated_at)
            SELECT g, '', 'en', 'ZA', 'HPCSA', 'B' || g, date '2030-01-01', '',
                   CASE WHEN g % 20 = 0 THEN 'pending' ELSE 'verified' END, {t0}, '', '',
                   10 + g % 30, g % 11 = 0, 60, '', {t0}, {t0}
            FROM generate_series({FACILITIES + 1}, {FACILITIES + SPECIALISTS}) g;
            INSERT INTO specialist_specialties (user_id, specialty_code)
            SELECT g, ({codes})[1 + g % 20]
            FROM generate_series({FACILITIES + 1}, {FACILITIES + SPECIALISTS}) g;
            INSERT INTO availability_windows (user_id, weekday, start_time, end_time)
            SELECT g, w, time '17:00' + (g % 3) * interval '1 hour', time '20:00'
            FROM generate_series({FACILITIES + 1}, {FACILITIES + SPECIALISTS}) g,
                 generate_series(0, 1) w;
            """,
        ),
        (
            "plan of each consult's life",
            f"""
            CREATE UNLOGGED TABLE bench_plan AS
            SELECT i AS id,
                   1 + floor({FACILITIES} * power({u("i", 2)}, 1.3))::int AS facility_id,
                   ({codes})[1 + floor(23 * power({u("i", 3)}, 1.4))::int] AS specialty,
                   CASE WHEN {u("i", 4)} < 0.1 THEN 'emergency'
                        WHEN {u("i", 4)} < 0.45 THEN 'urgent' ELSE 'routine' END AS urgency,
                   {t0} + {DAYS} * sqrt({u("i", 5)}) * interval '1 day' AS at,
                   CASE WHEN f < 0.01 THEN 'draft' WHEN f < 0.04 THEN 'cancelled'
                        WHEN f < 0.09 THEN 'escalated' WHEN f < 0.29 THEN 'async'
                        WHEN f < 0.84 THEN 'held' WHEN f < 0.90 THEN 'no_show'
                        ELSE 'open' END AS fate,
                   -ln(1 - {u("i", 7)}) AS e1,
                   -ln(1 - {u("i", 8)}) AS e2,
                   {FACILITIES} + 1 + floor({SPECIALISTS} * {u("i", 9)})::int AS spec1,
                   {FACILITIES} + 1 + floor({SPECIALISTS} * {u("i", 10)})::int AS spec2,
                   {u("i", 11)} AS r1,
                   {u("i", 12)} AS r2,
                   {u("i", 13)} AS r3
            FROM (SELECT i, {u("i", 6)} AS f FROM generate_series(1, {n}) i) s;
            ALTER TABLE bench_plan ADD COLUMN acc timestamptz, ADD COLUMN sess timestamptz,
                ADD COLUMN done timestamptz;
            UPDATE bench_plan SET
                acc = CASE WHEN fate IN ('async', 'held', 'no_show')
                    THEN at + e1 * interval '1 second' * CASE urgency
                        WHEN 'emergency' THEN 1800 WHEN 'urgent' THEN 14400 ELSE 86400 END
                    END;
            UPDATE bench_plan SET
                sess = CASE WHEN fate IN ('held', 'no_show')
                    THEN acc + interval '10 minutes' + e2 * interval '1 day' END,
                done = CASE fate WHEN 'held' THEN acc + interval '10 minutes'
                    + e2 * interval '1 day' + interval '30 minutes'
                    WHEN 'async' THEN acc + interval '6 hours' END;
            """,
        ),
        (
            "cases and consults",
            """
            INSERT INTO cases (id, patient_ref, age_years, sex, facility_id, created_by_id,
                               created_at)
            SELECT id, 'B-' || id, 1 + id % 80, CASE WHEN id % 2 = 0 THEN 'female' ELSE 'male' END,
                   facility_id, facility_id, at - interval '10 minutes'
            FROM bench_plan;
            INSERT INTO consults (id, case_id, facility_id, specialty, urgency, mode, language,
                question, history, examination, current_treatment, state, created_by_id,
                created_at, requested_at, state_changed_at)
            SELECT id, id, facility_id, specialty, urgency,
                   CASE WHEN fate = 'async' THEN 'asynchronous' ELSE 'video' END, 'en',
                   'Bench consult ' || id, '', '', '',
                   CASE fate WHEN 'draft' THEN 'draft' WHEN 'cancelled' THEN 'cancelled'
                       WHEN 'escalated' THEN 'escalated' WHEN 'async' THEN 'answered_async'
                       WHEN 'held' THEN 'closed' WHEN 'no_show' THEN 'no_show'
                       ELSE 'offered' END,
                   facility_id, at - interval '10 minutes',
                   CASE WHEN fate <> 'draft' THEN at END,
                   coalesce(done, sess, acc, at)
            FROM bench_plan;
            """,
        ),
        (
            "consult events",
            """
            INSERT INTO consult_events (consult_id, actor_id, at, from_state, to_state, reason)
            SELECT id, facility_id, at, 'draft', 'requested', '' FROM bench_plan
            WHERE fate <> 'draft'
            UNION ALL
            SELECT id, facility_id, at + interval '2 hours', 'requested', 'cancelled', ''
            FROM bench_plan WHERE fate = 'cancelled'
            UNION ALL
            SELECT id, NULL, at + interval '1 minute', 'requested', 'offered', ''
            FROM bench_plan WHERE fate NOT IN ('draft', 'cancelled')
            UNION ALL
            SELECT id, NULL, at + interval '1 day', 'offered', 'escalated', ''
            FROM bench_plan WHERE fate = 'escalated'
            UNION ALL
            SELECT id, spec1, acc, 'offered', 'accepted', '' FROM bench_plan WHERE acc IS NOT NULL
            UNION ALL
            SELECT id, spec1, done, 'accepted', 'answered_async', '' FROM bench_plan
            WHERE fate = 'async'
            UNION ALL
            SELECT id, spec1, acc + interval '1 minute', 'accepted', 'scheduled', ''
            FROM bench_plan WHERE sess IS NOT NULL
            UNION ALL
            SELECT id, NULL, sess, 'scheduled', 'in_session', '' FROM bench_plan
            WHERE fate = 'held'
            UNION ALL
            SELECT id, spec1, done, 'in_session', 'completed', '' FROM bench_plan
            WHERE fate = 'held'
            UNION ALL
            SELECT id, spec1, done + interval '2 days', 'completed', 'closed', '' FROM bench_plan
            WHERE fate = 'held'
            UNION ALL
            SELECT id, spec1, sess + interval '30 minutes', 'scheduled', 'no_show', ''
            FROM bench_plan WHERE fate = 'no_show';
            """,
        ),
        (
            "offers",
            """
            INSERT INTO consult_offers (consult_id, specialist_id, round, status, offered_at,
                expires_at, responded_at, reason, accepted_consult_id)
            SELECT id, spec1, 1,
                   CASE WHEN acc IS NOT NULL THEN 'accepted' ELSE 'expired' END,
                   at + interval '1 minute', at + interval '2 hours 1 minute', acc, '',
                   CASE WHEN acc IS NOT NULL THEN id END
            FROM bench_plan WHERE fate NOT IN ('draft', 'cancelled')
            UNION ALL
            SELECT id, CASE WHEN spec2 = spec1 THEN 201 + (spec1 - 200) % 300 ELSE spec2 END, 1,
                   CASE WHEN r1 < 0.4 THEN 'declined'
                        WHEN acc IS NOT NULL THEN 'withdrawn' ELSE 'expired' END,
                   at + interval '1 minute', at + interval '2 hours 1 minute',
                   CASE WHEN r1 < 0.4
                        THEN at + (coalesce(acc, at + interval '1 hour') - at) / 2 END,
                   '', NULL
            FROM bench_plan WHERE fate NOT IN ('draft', 'cancelled') AND r1 < 0.6;
            """,
        ),
        (
            "calls and their events",
            """
            INSERT INTO call_sessions (id, consult_id, room, started_at, ended_at, duration_s)
            SELECT id, id, 'bench-' || id, sess, sess + interval '20 minutes', 1200
            FROM bench_plan WHERE fate = 'held';
            INSERT INTO call_session_events (call_session_id, consult_id, kind, user_id, role,
                at, detail)
            SELECT id, id, 'joined', facility_id, 'clinician', sess, '{}' FROM bench_plan
            WHERE fate = 'held'
            UNION ALL
            SELECT id, id, 'joined', spec1, 'specialist', sess + interval '1 minute', '{}'
            FROM bench_plan WHERE fate = 'held'
            UNION ALL
            SELECT id, id, 'media', facility_id, 'clinician', sess + interval '3 minutes',
                   CASE WHEN r2 < 0.15 THEN '{"mode":"low"}' ELSE '{"mode":"audio-only"}' END
            FROM bench_plan WHERE fate = 'held' AND r2 < 0.2
            UNION ALL
            SELECT id, id, 'reconnecting', facility_id, 'clinician', sess + interval '5 minutes',
                   '{}'
            FROM bench_plan WHERE fate = 'held' AND r3 < 0.1
            UNION ALL
            SELECT id, id, 'reconnected', facility_id, 'clinician', sess + interval '6 minutes',
                   '{}'
            FROM bench_plan WHERE fate = 'held' AND r3 < 0.07
            UNION ALL
            SELECT id, id, 'ended', NULL, NULL, sess + interval '20 minutes', '{}'
            FROM bench_plan WHERE fate = 'held';
            INSERT INTO appointments (id, consult_id, specialist_id, starts_at, ends_at, status,
                uid, sequence, created_at, updated_at)
            SELECT id, id, spec1, sess, sess + interval '30 minutes',
                   CASE fate WHEN 'held' THEN 'completed' ELSE 'no_show' END,
                   'bench-' || id, 0, acc, sess
            FROM bench_plan WHERE sess IS NOT NULL;
            """,
        ),
        (
            "notes and outcomes",
            """
            INSERT INTO consult_notes (id, consult_id, series_id, version, amendment_reason,
                author_id, author_role, status, subjective, objective, assessment, plan,
                follow_up_on, follow_up_instruction, created_at, updated_at, signed_at)
            SELECT id, id, 'bench-' || id, 1, '', spec1, 'specialist', 'signed', '', '',
                   'Bench assessment', 'Bench plan',
                   CASE WHEN r1 < 0.3
                        THEN ((done AT TIME ZONE 'Africa/Maseru')::date + 14) END,
                   '', done, done, done
            FROM bench_plan WHERE done IS NOT NULL;
            INSERT INTO consult_outcomes (consult_id, outcome, detail, recorded_by_id,
                                          recorded_at)
            SELECT id,
                   CASE WHEN r2 < 0.5 THEN 'treated_locally' WHEN r2 < 0.7 THEN 'referral_avoided'
                        WHEN r2 < 0.85 THEN 'referred' WHEN r2 < 0.93 THEN 'transferred'
                        WHEN r2 < 0.97 THEN 'admitted' WHEN r2 < 0.99 THEN 'lost_to_follow_up'
                        ELSE 'died' END,
                   '', spec1,
                   CASE WHEN r1 < 0.12 THEN done - interval '1 minute'
                        ELSE done + interval '1 minute' END
            FROM bench_plan WHERE done IS NOT NULL
            UNION ALL
            SELECT id, 'referred', 'corrected', spec1, done + interval '1 day'
            FROM bench_plan WHERE done IS NOT NULL AND r3 > 0.95;
            """,
        ),
        (
            "network tests",
            f"""
            INSERT INTO network_tests (user_id, facility_id, created_at, connected, probes_sent,
                probes_received, recommendation, user_agent)
            SELECT f, f, {t0} + {DAYS} * sqrt({u("g", 20)}) * interval '1 day', true, 10, 10,
                   CASE WHEN {u("g", 22)} < 0.5 THEN 'normal' WHEN {u("g", 22)} < 0.75 THEN 'low'
                        WHEN {u("g", 22)} < 0.92 THEN 'audio-only' ELSE 'asynchronous' END,
                   'bench'
            FROM (SELECT g, 1 + floor({FACILITIES} * {u("g", 21)})::int AS f
                  FROM generate_series(1, {n_tests}) g) s;
            """,
        ),
        (
            "sequences, statistics",
            f"""
            DROP TABLE bench_plan;
            SELECT setval('districts_id_seq', {DISTRICTS});
            SELECT setval('facilities_id_seq', {FACILITIES});
            SELECT setval('users_id_seq', {FACILITIES + SPECIALISTS + 1});
            SELECT setval('cases_id_seq', {n});
            SELECT setval('consults_id_seq', {n});
            SELECT setval('call_sessions_id_seq', {n});
            SELECT setval('appointments_id_seq', {n});
            SELECT setval('consult_notes_id_seq', {n});
            CREATE TABLE bench_meta (consults int NOT NULL, seed_version int NOT NULL);
            INSERT INTO bench_meta VALUES ({n}, {SEED_VERSION});
            """,
        ),
    ]


#: The tables the seed loads in bulk.
LOADED = (
    "cases",
    "consults",
    "consult_events",
    "consult_offers",
    "call_sessions",
    "call_session_events",
    "appointments",
    "consult_notes",
    "consult_outcomes",
    "network_tests",
)
# Their indexes that no constraint owns (primary keys and unique constraints stay).
_INDEXES = """
    SELECT i.indexname, i.indexdef FROM pg_indexes i
    WHERE i.schemaname = current_schema() AND i.tablename = ANY(%s)
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
"""


def seeded_consults(engine: Engine) -> int | None:
    """How many consults the database was seeded with (None: not seeded, or an older seed)."""
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('bench_meta')")).scalar()
        if exists is None:
            return None
        row = conn.execute(text("SELECT consults, seed_version FROM bench_meta")).first()
    if row is None or row[1] != SEED_VERSION:
        return None
    return int(row[0])


def seed(engine: Engine, n: int, say: object = print) -> None:
    """Every table in one transaction (a failed seed leaves nothing), then ANALYZE."""
    import time

    with engine.begin() as conn:
        cursor = conn.connection.cursor()  # the driver's own: no parameters, several statements
        # Foreign keys are checked by per-row triggers: a bulk load of rows consistent by
        # construction skips them (as pg_restore does). Needs a superuser; else they run.
        superuser = cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if superuser.fetchone() == (True,):
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "SET LOCAL synchronous_commit = off; SET LOCAL maintenance_work_mem = '256MB'"
        )
        # Secondary indexes are dropped for the load and made again once, after it: one
        # sort per index instead of a million index insertions each (as pg_restore does).
        cursor.execute(_INDEXES, (list(LOADED),))
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        for name, sql in _statements(n):
            started = time.perf_counter()
            cursor.execute(sql)
            say(f"  seeded {name} in {time.perf_counter() - started:.1f} s")  # type: ignore[operator]
        started = time.perf_counter()
        for _name, definition in indexes:
            cursor.execute(definition)
        say(f"  {len(indexes)} indexes made in {time.perf_counter() - started:.1f} s")  # type: ignore[operator]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        started = time.perf_counter()
        conn.exec_driver_sql("VACUUM ANALYZE")
        say(f"  vacuum analyze in {time.perf_counter() - started:.1f} s")  # type: ignore[operator]
