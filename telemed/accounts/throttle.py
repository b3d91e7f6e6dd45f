"""Login throttling that cannot be turned on someone else (docs/login-policy.md).

The old rule (five failures lock an account for everyone; thirty from one address lock
everyone behind it) let anyone lock a clinician out by typing their e-mail, and let one
typist lock out a whole clinic behind its NAT. Three separate counts replace it:

- **account and address together**: the owner's own typos cost them a delay that doubles
  (1 s, 2 s, 4 s ... capped), never a lock; failures from another address do not count;
- **the account from every address**: past a high mark, only addresses the account has
  logged in from lately may still try (so a spread-out attack stops, the owner does not);
- **the address across accounts**: hundreds an hour, so a clinic behind one address is
  never stopped by typos, and an account known at that address still gets in.

No request sleeps: a refusal is a 429 with ``Retry-After`` naming when to try again. A
refused attempt checks no password and is not counted. An unlock by e-mail link
(``telemed.accounts.unlock``) or a success from the same address starts the counts again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from telemed.accounts import repository
from telemed.errors import TooManyRequests
from telemed.i18n import N_
from telemed.settings import Settings


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int  # per account and address, before any delay
    delay_base: timedelta  # the first delay; each failure after doubles it
    delay_cap: timedelta
    memory: timedelta  # failures older than this are forgotten
    per_account: int  # failures from every address, then unknown addresses wait
    known_for: timedelta  # an address the account logged in from within this is known
    per_address: int  # failures from one address across accounts in ``address_window``
    address_window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottlePolicy:
        return cls(
            free_failures=settings.login_free_failures,
            delay_base=timedelta(seconds=settings.login_delay_base_seconds),
            delay_cap=timedelta(seconds=settings.login_delay_cap_seconds),
            memory=timedelta(hours=settings.login_failure_memory_hours),
            per_account=settings.login_max_failures,
            known_for=timedelta(days=settings.login_known_address_days),
            per_address=settings.login_max_failures_per_address,
            address_window=timedelta(minutes=settings.login_address_window_minutes),
        )

    def delay(self, failures: int) -> timedelta:
        """The wait after ``failures`` failures in a row for one account from one address."""
        if failures < self.free_failures:
            return timedelta(0)
        doublings = min(failures - self.free_failures, 40)  # 2**40 s is past any cap
        delay: timedelta = min(self.delay_cap, self.delay_base * (2**doublings))
        return delay


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def _refuse(seconds: int) -> TooManyRequests:
    return TooManyRequests(
        N_(
            "Too many failed logins; try again in %(seconds)s seconds, or ask for an unlock "
            "link by e-mail."
        ),
        seconds=seconds,
        retry_after_seconds=seconds,
    )


def check(
    session: Session, policy: ThrottlePolicy, email: str, address: str, now: datetime
) -> None:
    """Raise ``TooManyRequests`` if this attempt must wait; cheap enough for every login
    (index lookups on e-mail and address), and read-only."""
    unlocked = repository.last_unlock(session, email)
    forgotten = now - policy.memory

    pair_since = _latest(forgotten, unlocked, repository.last_success(session, email, address))
    failures, last = repository.failures_since(session, pair_since, email=email, address=address)
    if last is not None:
        wait_until = last + policy.delay(failures)
        if wait_until > now:
            raise _refuse(_seconds_until(wait_until, now))

    known: bool | None = None  # looked up only when a wide count is reached

    def is_known() -> bool:
        nonlocal known
        if known is None:
            since = now - policy.known_for
            succeeded = repository.last_success(session, email, address)
            known = succeeded is not None and succeeded > since
        return known

    account_since = _latest(forgotten, unlocked, repository.last_success(session, email))
    failures, _ = repository.failures_since(session, account_since, email=email)
    if failures >= policy.per_account and not is_known():
        oldest = repository.failure_at(
            session, account_since, failures - policy.per_account, email=email
        )
        raise _refuse(_seconds_until(oldest + policy.memory, now))

    address_since = now - policy.address_window
    failures, _ = repository.failures_since(session, address_since, address=address)
    if failures >= policy.per_address and not is_known():
        oldest = repository.failure_at(
            session, address_since, failures - policy.per_address, address=address
        )
        raise _refuse(_seconds_until(oldest + policy.address_window, now))


def _latest(first: datetime, *others: datetime | None) -> datetime:
    return max([first, *(o for o in others if o is not None)])
