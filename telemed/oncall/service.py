"""The on-call rota: specialists declare weekly blocks per specialty; an emergency goes
first to whoever is on call at that moment (:func:`on_call_now`, called by the offers);
coordinators see the coming week in ``report``; one-tap links are checked and
used here. Services only flush: the request (or job run) owns the transaction.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.consults import repository as consults_repository
from telemed.consults.models import Consult, Urgency
from telemed.db import pk
from telemed.directory import repository as directory
from telemed.directory.models import ExceptionKind
from telemed.directory.service import is_eligible
from telemed.errors import Conflict, Forbidden, NotFound, TelemedError, ValidationFailed
from telemed.i18n import N_
from telemed.oncall import auth, links, repository, rota
from telemed.oncall.models import OnCallBlock, OnCallLinkUse
from telemed.oncall.policy import OnCallPolicy
from telemed.oncall.schemas import BlockIn, BlockPublic

MAX_BLOCKS = 70  # ten a day: more is a mistake, not a rota
WEEK = timedelta(days=7)


def weekly(block: OnCallBlock) -> rota.Weekly:
    return rota.Weekly(block.weekday, block.start_time, block.end_time)


def _public(block: OnCallBlock, zone: str) -> BlockPublic:
    return BlockPublic(
        id=pk(block),
        specialty=block.specialty_code,
        weekday=block.weekday,
        start=block.start_time,
        end=block.end_time,
        time_zone=zone,
    )


def my_blocks(session: Session, user: User) -> list[BlockPublic]:
    user_id = auth.ensure_specialist(user)
    return [_public(b, user.timezone) for b in repository.blocks_of(session, user_id)]


def held_specialties(session: Session, user: User) -> list[str]:
    """The specialties a block may name: the ones on the specialist's profile."""
    user_id = auth.ensure_specialist(user)
    return directory.specialties_of(session, [user_id]).get(user_id, [])


def _on_leave(session: Session, user_id: int, weekday: int, today: date) -> date | None:
    """The first day of a current or future leave that falls on ``weekday``, if any."""
    for leave in directory.exceptions_of(session, [user_id]).get(user_id, []):
        if leave.kind != ExceptionKind.leave or leave.last_day < today:
            continue
        day = max(leave.first_day, today)
        for _ in range(7):  # a week of the leave meets every weekday
            if day > leave.last_day:
                break
            if day.weekday() == weekday:
                return day
            day += timedelta(days=1)
    return None


def _check(session: Session, user: User, data: BlockIn, today: date) -> None:
    """Every refusal names the field it is about."""
    user_id = pk(user)
    if consults_repository.active_specialty(session, data.specialty) is None:
        raise ValidationFailed(
            N_("unknown specialty %(specialty)s"),
            specialty=repr(data.specialty),
            field="specialty",
        )
    if data.specialty not in directory.specialties_of(session, [user_id]).get(user_id, []):
        raise ValidationFailed(
            N_("you do not hold the specialty %(specialty)s in your profile"),
            specialty=repr(data.specialty),
            field="specialty",
        )
    profile = directory.get_profile(session, user_id)
    if profile is None or not is_eligible(profile, today):
        raise Conflict(
            N_("your registration must be verified and unexpired to go on call"), field="specialty"
        )
    shape = rota.Weekly(data.weekday, data.start, data.end)
    start, end = shape.minutes
    if end <= start:
        raise ValidationFailed(N_("the block must end after it starts"), field="end")
    mine = repository.blocks_of(session, user_id)
    if len(mine) >= MAX_BLOCKS:
        raise ValidationFailed(
            N_("at most %(max_blocks)s on-call blocks"), max_blocks=MAX_BLOCKS, field="weekday"
        )
    for other in mine:
        if other.specialty_code != data.specialty or other.weekday != data.weekday:
            continue
        a, b = weekly(other).minutes
        if a < end and start < b:
            raise Conflict(
                N_("overlaps your block %(start)s-%(end)s on the same day"),
                start=format(other.start_time, "%H:%M"),
                end=format(other.end_time, "%H:%M"),
                field="start",
            )
    on_leave = _on_leave(session, user_id, data.weekday, today)
    if on_leave is not None:
        raise Conflict(
            N_("you are on leave on %(day)s; change your leave first"),
            day=format(on_leave, "%a %d %b %Y"),
            field="weekday",
        )


def declare(session: Session, user: User, data: BlockIn, now: datetime) -> BlockPublic:
    """Add a block; refused (any 4xx): nothing stored and the attempt audited."""
    user_id = auth.ensure_specialist(user)
    today = now.astimezone(ZoneInfo(user.timezone)).date()
    with audit.refusals_audited(session, user, "oncall_block", "new"):
        _check(session, user, data, today)
        block = OnCallBlock(
            user_id=user_id,
            specialty_code=data.specialty,
            weekday=data.weekday,
            start_time=data.start,
            end_time=data.end,
            created_at=now,
        )
        session.add(block)
        session.flush()
        audit.record(
            session,
            user,
            AuditAction.create,
            "oncall_block",
            pk(block),
            detail=f"{data.specialty} weekday {data.weekday} {data.start:%H:%M}-{data.end:%H:%M}"
            f" {user.timezone}",
        )
    return _public(block, user.timezone)


def remove(session: Session, user: User, block_id: int) -> None:
    """Blocks are a promise to be reachable, not clinical data: removing one deletes it
    (audited)."""
    user_id = auth.ensure_specialist(user)
    block = repository.get_block(session, block_id)
    if block is None or block.user_id != user_id:
        raise NotFound(N_("on-call block %(block_id)s not found"), block_id=block_id)
    detail = f"removed: {block.specialty_code} weekday {block.weekday}"
    session.delete(block)
    session.flush()
    audit.record(session, user, AuditAction.update, "oncall_block", block_id, detail=detail)


def available(session: Session, specialty: str, today: date) -> dict[int, User]:
    """Who may be woken for ``specialty``: verified, unexpired, active, not away."""
    return {
        pk(user): user
        for profile, user in directory.eligible_profiles(session, today, specialty)
        if not profile.away
    }


def on_call_now(session: Session, specialty: str, now: datetime) -> list[User]:
    """Who is on call for ``specialty`` at ``now``: a block covering ``now`` in their zone,
    still eligible, and not on leave that day (leave added after the block wins)."""
    blocks = repository.all_blocks(session, specialty)
    if not blocks:
        return []
    people = available(session, specialty, now.date())
    found: dict[int, User] = {}
    for block in blocks:
        user = people.get(block.user_id)
        if user is None or block.user_id in found:
            continue
        zone = ZoneInfo(user.timezone)
        if rota.covers(weekly(block), zone, now) and not _on_leave_at(session, user, now):
            found[block.user_id] = user
    return [found[k] for k in sorted(found)]


def _on_leave_at(session: Session, user: User, at: datetime) -> bool:
    day = at.astimezone(ZoneInfo(user.timezone)).date()
    return any(
        e.kind == ExceptionKind.leave and e.first_day <= day <= e.last_day
        for e in directory.exceptions_of(session, [pk(user)]).get(pk(user), [])
    )


def check_link(
    session: Session, token: str, now: datetime, policy: OnCallPolicy
) -> tuple[links.LinkClaim, User]:
    """A valid, unexpired, unused link and its specialist; otherwise the refusal. Reads
    only: a link prefetcher's GET changes nothing."""
    claim = links.read(policy.link_secret, token, now)
    if repository.link_used(session, links.digest(token)) is not None:
        raise Conflict(N_("this link was used already: it works once"), field="token")
    user = session.get(User, claim.user_id)
    if user is None or not user.is_active:
        raise Forbidden(N_("this link's account is not active"), field="token")
    return claim, user


def redeem_link(
    session: Session, token: str, now: datetime, policy: OnCallPolicy
) -> tuple[links.LinkClaim, User]:
    """Use the link (recorded, audited): the caller accepts the offer in the same unit of
    work. The unique digest refuses a second use even if two taps race past the check."""
    claim, user = check_link(session, token, now, policy)
    session.add(
        OnCallLinkUse(
            token_digest=links.digest(token),
            offer_id=claim.offer_id,
            user_id=claim.user_id,
            used_at=now,
        )
    )
    session.flush()
    audit.record(
        session, user, AuditAction.update, "oncall_link", claim.offer_id, detail="link used"
    )
    return claim, user


def link_refused(session: Session, token: str, error: TelemedError) -> None:
    """Audit a refused link (forged, expired, used twice, offer gone), whatever the request
    does next; the ids are the link's own, unverified for a forged one."""
    parts = token.split(".")
    offer = parts[0] if parts and parts[0].isdigit() else "?"
    user = parts[1] if len(parts) > 1 and parts[1].isdigit() else "?"
    audit.record_refusal(
        session,
        None,
        "oncall_link",
        f"offer {offer}"[:40],
        detail=f"{error.code}: {error.message} (user {user[:12]})",
    )


def link_read(session: Session, claim: links.LinkClaim, user: User, consult: Consult) -> None:
    """The confirm page named the consult (to a phone, or a link prefetcher)."""
    audit.record_access(
        session,
        user,
        AuditAction.read,
        "oncall_link",
        claim.offer_id,
        case_id=consult.case_id,
        consult_id=pk(consult),
        detail="confirm page",
    )


def emergency_first(
    session: Session, consult: Consult, failures: int, now: datetime, policy: OnCallPolicy | None
) -> list[User]:
    """The offers' hook: for an emergency's first round, the specialists on call now (the
    offer goes to them alone, for ``policy.answer_window``); empty otherwise, and the
    offers broadcast as before. After that round the broadcast, then the escalation, are
    the offers' own."""
    if policy is None or failures or consult.urgency != Urgency.emergency:
        return []
    return on_call_now(session, consult.specialty, now)


def anyone_on_call_now(session: Session, now: datetime) -> list[tuple[str, User]]:
    """Everyone on call at ``now`` for any specialty, as (specialty, specialist): whom a
    coordinator may call for an emergency that found nobody of its own specialty."""
    specialties = sorted({b.specialty_code for b in repository.all_blocks(session)})
    return [(code, user) for code in specialties for user in on_call_now(session, code, now)]
