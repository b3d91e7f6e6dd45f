"""The month to send, and the two documents DHIS2 imports at ``/api/dataValueSets``.

- ``dataValueSets`` JSON: ``{"dataSet", "period": "202611", "dataValues": [{"dataElement",
  "period", "orgUnit", "categoryOptionCombo", "value"}]}``, values as strings, as DHIS2's
  web API documents them (no top-level ``orgUnit``: one document holds every facility).
- ADX XML (IHE QRPH ADX, namespace ``urn:ihe:qrph:adx:2015``): one ``<group dataSet
  orgUnit period="2026-11-01/P1M">`` per facility, each value a ``<dataValue dataElement
  value>``. The disaggregation is DHIS2's own ``categoryOptionCombo`` attribute (DHIS2's
  ADX reader accepts it beside category-code attributes), so the same mapping serves both
  formats; the import is told that the identifiers are UIDs (``client``).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

from telemed.errors import ValidationFailed
from telemed.interop.dhis2.mapping import Mapping
from telemed.uptake.filters import month_start
from telemed.uptake.monthly import FacilityValue

ADX_NAMESPACE = "urn:ihe:qrph:adx:2015"
_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Period:
    """A Maseru calendar month."""

    first: date

    @classmethod
    def parse(cls, text: str, today: date) -> Period:
        """``YYYY-MM``, a month that has ended (Maseru ``today``): the current month is
        still counting, and a future one has nothing."""
        match = _PERIOD.match(text.strip())
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ValidationFailed(
                f"period must be a month written YYYY-MM, not {text!r}", field="period"
            )
        period = cls(date(int(match.group(1)), int(match.group(2)), 1))
        if period.first >= month_start(today):
            raise ValidationFailed(
                f"period {period} has not ended yet (today is {today:%Y-%m-%d} in Maseru); "
                "only a finished month can be sent",
                field="period",
            )
        return period

    @classmethod
    def before(cls, today: date) -> Period:
        """The month before the one containing ``today``."""
        first = month_start(today)
        return cls(
            date(first.year - 1, 12, 1)
            if first.month == 1
            else first.replace(month=first.month - 1)
        )

    def __str__(self) -> str:
        return f"{self.first:%Y-%m}"

    @property
    def dhis2(self) -> str:
        return f"{self.first:%Y%m}"

    @property
    def adx(self) -> str:
        return f"{self.first:%Y-%m-%d}/P1M"


class Format(StrEnum):
    json = "json"
    adx = "adx"

    @property
    def content_type(self) -> str:
        return "application/json" if self is Format.json else "application/adx+xml"


@dataclass(frozen=True)
class DataValue:
    data_element: str
    org_unit: str
    category_option_combo: str
    value: str


@dataclass(frozen=True)
class Payload:
    format: Format
    body: bytes
    count: int  # data values

    @property
    def content_type(self) -> str:
        return self.format.content_type


def data_values(values: Iterable[FacilityValue], mapping: Mapping) -> list[DataValue]:
    """Each value mapped; a code the mapping lacks is an error naming it."""
    out = []
    for v in values:
        target = mapping.target(v.indicator, v.category)
        out.append(
            DataValue(
                target.data_element,
                mapping.org_unit(v.facility),
                target.category_option_combo,
                _text(v.value),
            )
        )
    return out


def build(
    fmt: Format, data_set: str, period: Period, values: list[DataValue], now: datetime
) -> Payload:
    body = (
        to_json(data_set, period, values)
        if fmt is Format.json
        else to_adx(data_set, period, values, now)
    )
    return Payload(fmt, body, len(values))


def to_json(data_set: str, period: Period, values: list[DataValue]) -> bytes:
    document = {
        "dataSet": data_set,
        "period": period.dhis2,
        "dataValues": [
            {
                "dataElement": v.data_element,
                "period": period.dhis2,
                "orgUnit": v.org_unit,
                "categoryOptionCombo": v.category_option_combo,
                "value": v.value,
            }
            for v in values
        ],
    }
    return json.dumps(document, indent=1).encode() + b"\n"


def to_adx(data_set: str, period: Period, values: list[DataValue], now: datetime) -> bytes:
    # Elements in the ADX namespace (the default one), attributes unqualified as ADX has
    # them: ElementTree's ``default_namespace`` refuses unqualified attributes, so the
    # namespace is declared as the root's ``xmlns`` attribute.
    exported = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    root = ET.Element("adx", {"xmlns": ADX_NAMESPACE, "exported": exported})
    groups: dict[str, ET.Element] = {}
    for v in values:
        group = groups.get(v.org_unit)
        if group is None:
            attributes = {"dataSet": data_set, "orgUnit": v.org_unit, "period": period.adx}
            group = groups[v.org_unit] = ET.SubElement(root, "group", attributes)
        ET.SubElement(
            group,
            "dataValue",
            {
                "dataElement": v.data_element,
                "categoryOptionCombo": v.category_option_combo,
                "value": v.value,
            },
        )
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def _text(value: int | float) -> str:
    """DHIS2 takes values as strings: an integer as is, a sum of hours with at most two
    decimals and no exponent."""
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")
