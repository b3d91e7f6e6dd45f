"""The dashboard's tables as plain data: the page renders them, the CSV writes them, so
both always show the same numbers."""

from __future__ import annotations

from dataclasses import dataclass, field

NONE = "\u2013"  # an en dash: nothing to show


@dataclass(frozen=True)
class Cell:
    value: float | str | None  # None: nothing to show (a wait with no consult)
    text: str  # as shown on the page
    link: str | None = None  # the consults behind the number


@dataclass
class Table:
    key: str  # also the CSV's name
    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)

    def add(self, *cells: Cell) -> None:
        self.rows.append(list(cells))


def text(value: str) -> Cell:
    return Cell(value, value)


def number(value: float, link: str | None = None) -> Cell:
    shown = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return Cell(value, shown, link if value else None)


def percent(value: float | None) -> Cell:
    return Cell(None, NONE) if value is None else Cell(round(value * 100, 1), f"{value:.0%}")


def hours(seconds: float | None) -> Cell:
    """A wait in hours (one decimal): requests wait minutes to days."""
    if seconds is None:
        return Cell(None, NONE)
    value = round(seconds / 3600, 1)
    return Cell(value, f"{value:,.1f} h")
