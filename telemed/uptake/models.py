"""The uptake rollup's tables: the indicators' fact rows placed on Maseru days, their sums
per day or month and per district, facility or specialty and urgency, and how fresh they
are. Written only by ``telemed.uptake.rollup`` (a job); read by ``telemed.uptake.fast``.

Empty dimensions are stored as ``0`` or ``''``, not NULL, so that a rollup row has one key
that an upsert can find; a fact with no earlier fact of its subject has ``prev_day``
``NO_DAY`` (a date before any other), so "the previous fact is before this bucket" is one
comparison.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Column, Date, Float, Index, Integer, String, false
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime

NO_DAY = date(1, 1, 1)
NO_BIN = -1


class UptakeFact(SQLModel, table=True):
    """One fact row of one indicator (``telemed.uptake.indicators``), placed on its Maseru
    day, with the day of its subject's previous fact of the same indicator."""

    __tablename__ = "uptake_facts"
    __table_args__ = (
        Index("ix_uptake_facts_consult", "consult_id"),
        Index("ix_uptake_facts_facility_day", "facility_id", "day"),
        Index("ix_uptake_facts_indicator_day", "indicator", "day"),
    )
    id: int | None = Field(default=None, primary_key=True)
    indicator: str = Field(max_length=24)
    consult_id: int | None = None  # None: a network test
    district_id: int = 0
    facility_id: int = 0
    specialty: str = Field(default="", max_length=40)
    urgency: str = Field(default="", max_length=12)
    category: str = Field(default="", max_length=24)
    subject: int = 0
    day: date = Field(sa_column=Column(Date, nullable=False))
    prev_day: date = Field(sa_column=Column(Date, nullable=False))
    value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    vbin: int = NO_BIN


class UptakeRollup(SQLModel, table=True):
    """Sums of fact rows per ``grain`` (``m``/``d``: month or day, then ``D`` district,
    ``F`` facility, ``su`` specialty and urgency) and key."""

    __tablename__ = "uptake_rollup"
    __table_args__ = (
        Index("ix_uptake_rollup_district", "grain", "district_id", "day"),
        Index("ix_uptake_rollup_facility", "grain", "facility_id", "day"),
    )
    grain: str = Field(sa_column=Column(String(4), primary_key=True))
    indicator: str = Field(sa_column=Column(String(24), primary_key=True))
    day: date = Field(sa_column=Column(Date, primary_key=True))
    prev_day: date = Field(sa_column=Column(Date, primary_key=True))
    district_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    facility_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    specialty: str = Field(sa_column=Column(String(40), primary_key=True))
    urgency: str = Field(sa_column=Column(String(12), primary_key=True))
    category: str = Field(sa_column=Column(String(24), primary_key=True))
    subject: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    vbin: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    n: int = 0
    total: float = Field(default=0.0, sa_column=Column(Float, nullable=False))


class UptakeWaitPick(SQLModel, table=True):
    """Where one percentile (``pct``: 50, 90) of one waiting time falls in one month, for
    one ``scope`` of filters (``m`` none, ``mD`` a district, ``ms`` a specialty, ``mu`` an
    urgency, ``msu`` both): the month's number of waits and the bin (of its month rollup
    rows) the nearest rank falls in, with that bin's count and sum of seconds. Kept by
    ``telemed.uptake.picks`` so that the dashboard reads a month's percentiles by key
    instead of summing its bins; empty dimensions are ``0`` or ``''``."""

    __tablename__ = "uptake_wait_picks"
    scope: str = Field(sa_column=Column(String(4), primary_key=True))
    indicator: str = Field(sa_column=Column(String(24), primary_key=True))
    month: date = Field(sa_column=Column(Date, primary_key=True))
    district_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    specialty: str = Field(sa_column=Column(String(40), primary_key=True))
    urgency: str = Field(sa_column=Column(String(12), primary_key=True))
    pct: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    vbin: int = 0  # the bin the nearest rank falls in (``sql.wait_bin``)
    waits: int = 0  # the month's waits in this scope
    n: int = 0  # those in the picked bin
    total: float = Field(default=0.0, sa_column=Column(Float, nullable=False))


class UptakeRollupState(SQLModel, table=True):
    """The one row saying how fresh the rollup is: every change committed before
    ``as_of`` minus the refresh's margin is in it (``telemed.uptake.rollup``)."""

    __tablename__ = "uptake_rollup_state"
    id: int = Field(default=1, primary_key=True)
    as_of: datetime = Field(sa_type=UTCDateTime)
    built_at: datetime = Field(sa_type=UTCDateTime)  # the last full rebuild
    watermarks: str = Field(default="{}", max_length=2000)  # JSON: table -> [older, newer] max id
    # the months' wait picks (``UptakeWaitPick``) are kept: false on a rollup built before
    # them, until the job has made them (the dashboard sums the bins meanwhile)
    picks_built: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
