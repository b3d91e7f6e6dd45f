"""Every rule of the second factor: enrolment, codes at login, recovery codes, disabling,
and re-authentication before sensitive actions. Services never commit (``telemed.uow``);
the policy (keys, limits, required roles) is passed in.

Guessing: wrong codes (and wrong passwords at a re-authentication) count per user, kept
although the request fails (``uow.persist_regardless``); after ``policy.max_failures``
within ``policy.window`` every guess is refused with 429 until the window has passed, right
or wrong. Replay: a TOTP code is accepted once; the time step it belongs to is stored and
a code of that step or an earlier one is refused (``repository.claim_step``). Every
enrolment, success, failure, recovery code used, regeneration and disabling is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from telemed import uow
from telemed.accounts.models import User
from telemed.accounts.security import new_token, token_digest, verify_password
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.db import pk
from telemed.errors import Conflict, Forbidden, NotAuthenticated, TooManyRequests
from telemed.mfa import repository, totp
from telemed.mfa.models import GuessCounter, LoginChallenge, RecoveryCode, TotpCredential
from telemed.mfa.policy import MfaPolicy

OBJECT = "mfa"
WRONG_CODE = "That code is not right; try the newest code from your app."
REPLAYED = "That code was used already; wait for the next one."
CODE_REQUIRED = "Enter the code from your authenticator app."


@dataclass(frozen=True)
class Status:
    enrolled: bool
    recovery_codes_left: int
    required: bool  # the user's role must use a second factor


@dataclass(frozen=True)
class Enrolment:
    secret: str  # shown as text beside the QR code, for typing into the app
    uri: str  # otpauth://, drawn as the QR code


@dataclass(frozen=True)
class Pending:
    """A login waiting for its second step: the cookie value (only its digest is stored)."""

    token: str
    purpose: str  # "code" or "enrol"


def status(session: Session, policy: MfaPolicy, user: User) -> Status:
    found = repository.credential(session, pk(user))
    enrolled = found is not None and found.confirmed_at is not None
    left = repository.recovery_codes_left(session, pk(user)) if enrolled else 0
    return Status(enrolled, left, user.role in policy.required_roles)


def is_enrolled(session: Session, user_id: int) -> bool:
    found = repository.credential(session, user_id)
    return found is not None and found.confirmed_at is not None


# --- the login's second step ------------------------------------------------------------


def second_step(session: Session, policy: MfaPolicy, user: User) -> str | None:
    """What a login must do after a right password: "code" (enrolled), "enrol" (the role
    requires a second factor the user does not have yet), or None (nothing more)."""
    if is_enrolled(session, pk(user)):
        return "code"
    if user.role in policy.required_roles:
        return "enrol"
    return None


def begin_challenge(
    session: Session, policy: MfaPolicy, user: User, purpose: str, next_path: str, now: datetime
) -> Pending:
    token = new_token()
    session.add(
        LoginChallenge(
            id=token_digest(token),
            user_id=pk(user),
            purpose=purpose,
            csrf_token=new_token(),
            next_path=next_path,
            created_at=now,
            expires_at=now + policy.challenge,
        )
    )
    session.flush()
    return Pending(token=token, purpose=purpose)


def challenge_of(session: Session, token: str, now: datetime) -> LoginChallenge | None:
    """The live challenge behind a cookie (not used, not expired), or None."""
    return repository.live_challenge(session, token_digest(token), now)


def user_of(session: Session, challenge: LoginChallenge) -> User:
    user = session.get(User, challenge.user_id)
    if user is None or not user.is_active:
        raise NotAuthenticated("Log in first.")
    return user


def finish_challenge(session: Session, challenge: LoginChallenge, now: datetime) -> None:
    """Close the challenge once; a second request with the same cookie is refused."""
    if not repository.close_challenge(session, challenge.id, now):
        raise NotAuthenticated("This login step was used already; log in again.")


def check_api_login(
    session: Session, policy: MfaPolicy, user: User, code: str | None, now: datetime
) -> None:
    """The JSON login's second step, in the same request as the password: refused unless
    a code is given for an enrolled user; a required role without MFA enrols on the web."""
    step = second_step(session, policy, user)
    if step == "enrol":
        raise Forbidden("Set up two-step login on the web page first: log in at /login.")
    if step == "code":
        if not code:
            raise NotAuthenticated(CODE_REQUIRED, field="code")
        verify(session, policy, user, code, now)


# --- checking a code ----------------------------------------------------------------------


def _throttled(session: Session, policy: MfaPolicy, user_id: int, now: datetime) -> None:
    row = repository.counter(session, user_id, lock=True)
    if (
        row is not None
        and row.last_failure_at is not None
        and row.failures >= policy.max_failures
        and row.last_failure_at > now - policy.window
    ):
        wait = row.last_failure_at + policy.window - now
        raise TooManyRequests(
            "Too many wrong codes; try again later.",
            retry_after_seconds=max(1, int(wait.total_seconds())),
        )


def _failed(session: Session, policy: MfaPolicy, user: User, why: str, now: datetime) -> None:
    """Count the failure and audit it, both kept although the request fails."""
    user_id = pk(user)

    def count(unit: Session) -> None:
        row = unit.get(GuessCounter, user_id) or GuessCounter(user_id=user_id)
        recent = row.last_failure_at is not None and row.last_failure_at > now - policy.window
        row.failures = row.failures + 1 if recent else 1
        row.last_failure_at = now
        unit.add(row)
        unit.flush()

    uow.persist_regardless(session, count)
    audit.record_refusal(session, user, OBJECT, user_id, detail=why)


def _passed(session: Session, user: User, detail: str) -> None:
    row = repository.counter(session, pk(user))
    if row is not None and row.failures:
        row.failures = 0
        session.add(row)
    audit.record(session, user, AuditAction.authenticate, OBJECT, pk(user), detail=detail)


def _check_totp(
    session: Session,
    policy: MfaPolicy,
    user: User,
    credential: TotpCredential,
    code: str,
    now: datetime,
) -> None:
    secret = policy.box.open(credential.secret_encrypted)
    step = None if secret is None else totp.matching_step(secret, code, now)
    if step is None:
        _failed(session, policy, user, "wrong code", now)
        raise NotAuthenticated(WRONG_CODE, field="code")
    if not repository.claim_step(session, pk(user), step):
        _failed(session, policy, user, "code replayed", now)
        raise NotAuthenticated(REPLAYED, field="code")


def verify(session: Session, policy: MfaPolicy, user: User, code: str, now: datetime) -> str:
    """Check a TOTP code or a recovery code of an enrolled user: "totp" or "recovery".
    A wrong one raises ``NotAuthenticated`` (field ``code``); too many, ``TooManyRequests``."""
    user_id = pk(user)
    _throttled(session, policy, user_id, now)
    credential = repository.credential(session, user_id)
    if credential is None or credential.confirmed_at is None:
        raise Conflict("Two-step login is not set up for this account.")
    if totp.looks_like_totp(code):
        _check_totp(session, policy, user, credential, code, now)
        _passed(session, user, "code accepted")
        return "totp"
    hashed = policy.box.code_hash(totp.normal_recovery_code(code))
    if not repository.use_recovery_code(session, user_id, hashed, now):
        _failed(session, policy, user, "wrong recovery code", now)
        raise NotAuthenticated(WRONG_CODE, field="code")
    left = repository.recovery_codes_left(session, user_id)
    _passed(session, user, f"recovery code used; {left} left")
    return "recovery"


# --- enrolment, recovery codes, disabling -------------------------------------------------


def start_enrolment(session: Session, policy: MfaPolicy, user: User, now: datetime) -> Enrolment:
    """The secret to put in the app: the pending one if enrolment was begun (reloading the
    page must not invalidate what the phone scanned), else a new one."""
    found = repository.credential(session, pk(user), lock=True)
    if found is not None and found.confirmed_at is not None:
        raise Conflict("Two-step login is already set up; turn it off first to start again.")
    secret = None if found is None else policy.box.open(found.secret_encrypted)
    if secret is None:
        secret = totp.new_secret()
        sealed = policy.box.seal(secret)
        if found is None:
            session.add(TotpCredential(user_id=pk(user), secret_encrypted=sealed, created_at=now))
        else:
            found.secret_encrypted = sealed
            session.add(found)
        session.flush()
    return Enrolment(secret=secret, uri=totp.provisioning_uri(secret, user.email))


def confirm_enrolment(
    session: Session, policy: MfaPolicy, user: User, code: str, now: datetime
) -> list[str]:
    """The first code proves the app holds the secret; then the recovery codes, in clear
    this once (only their hashes are kept)."""
    user_id = pk(user)
    _throttled(session, policy, user_id, now)
    found = repository.credential(session, user_id, lock=True)
    if found is None:
        raise Conflict("Start setting up two-step login first.")
    if found.confirmed_at is not None:
        raise Conflict("Two-step login is already set up.")
    _check_totp(session, policy, user, found, code, now)
    found.confirmed_at = now
    session.add(found)
    codes = _new_recovery_codes(session, policy, user_id, now)
    audit.record(session, user, AuditAction.create, OBJECT, user_id, detail="enrolled (TOTP)")
    return codes


def _new_recovery_codes(
    session: Session, policy: MfaPolicy, user_id: int, now: datetime
) -> list[str]:
    repository.drop_recovery_codes(session, user_id)
    codes = totp.new_recovery_codes()
    for code in codes:
        session.add(
            RecoveryCode(user_id=user_id, code_hash=policy.box.code_hash(code), created_at=now)
        )
    session.flush()
    return codes


def regenerate_recovery_codes(
    session: Session, policy: MfaPolicy, user: User, now: datetime
) -> list[str]:
    """New codes; the old ones stop working."""
    if not is_enrolled(session, pk(user)):
        raise Conflict("Two-step login is not set up for this account.")
    codes = _new_recovery_codes(session, policy, pk(user), now)
    audit.record(session, user, AuditAction.update, OBJECT, pk(user), detail="recovery codes new")
    return codes


def disable(session: Session, user: User, *, by: User | None) -> None:
    """Remove the authenticator and the recovery codes. A user whose role requires a second
    factor is sent to enrolment at their next login. ``by``: who did it (None: the command
    line, e.g. after the app secret changed)."""
    user_id = pk(user)
    repository.drop_recovery_codes(session, user_id)
    repository.drop_credential(session, user_id)
    session.flush()
    audit.record(
        session,
        by,
        AuditAction.update,
        OBJECT,
        user_id,
        detail="disabled" if by is not None and pk(by) == user_id else "disabled for the user",
    )


# --- re-authentication --------------------------------------------------------------------


def recently_proved(
    session: Session, policy: MfaPolicy, user: User, digest: str, now: datetime
) -> bool:
    """Whether the login session (cookie digest) proved its user within ``policy.reauth``:
    at login or by a re-authentication. A role that requires a second factor must also
    have one (a session from before the requirement was turned on)."""
    if user.role in policy.required_roles and not is_enrolled(session, pk(user)):
        return False
    proof = repository.last_proof(session, digest)
    if proof is None:
        return False
    latest = max(p for p in proof if p is not None)
    return latest > now - policy.reauth


def reauthenticate(
    session: Session,
    policy: MfaPolicy,
    user: User,
    digest: str,
    *,
    secret: str,
    now: datetime,
) -> None:
    """Prove the user again: an enrolled user with a code (TOTP or recovery), anyone else
    with their password. Counted and audited like the login's second step."""
    if is_enrolled(session, pk(user)):
        verify(session, policy, user, secret, now)
    else:
        _throttled(session, policy, pk(user), now)
        stored = session.get(User, pk(user))
        if stored is None or not verify_password(stored.password_hash, secret):
            _failed(session, policy, user, "wrong password at re-authentication", now)
            raise NotAuthenticated("Wrong password.", field="secret")
        _passed(session, user, "re-authenticated with the password")
    repository.set_proof(session, digest, now)
    session.flush()
