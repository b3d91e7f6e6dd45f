"""The mapping file: which DHIS2 data element and category option combo each count goes to,
which org unit each facility is, and the data set. TOML (``tomllib``: no dependency); the
example in deploy/dhis2/mapping.example.toml covers every count the export produces.

Checked when read, so that a mistake stops the export with its code and line named instead
of reaching DHIS2: an unknown indicator, category or facility code; a UID that is not a
DHIS2 UID (11 characters, a letter then letters and digits); two counts sent to the same
data element and combo (the second would overwrite the first). Facility codes are checked
against the database by ``check_facilities``, since only the database knows them.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telemed.errors import ValidationFailed
from telemed.interop.dhis2.codes import exportable

UID = re.compile(r"^[A-Za-z][A-Za-z0-9]{10}$")


class MappingError(ValidationFailed):
    """A mapping file that cannot be used, or a value it has no mapping for."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="mapping")


@dataclass(frozen=True)
class Target:
    data_element: str
    category_option_combo: str


@dataclass(frozen=True)
class Mapping:
    source: str  # the file, for messages
    data_set: str
    org_units: dict[str, str]  # facility code -> org unit UID
    targets: dict[tuple[str, str | None], Target]  # (indicator, category) -> target
    lines: tuple[str, ...] = field(default=(), repr=False, compare=False)  # for messages

    def org_unit(self, facility: str) -> str:
        try:
            return self.org_units[facility]
        except KeyError:
            raise MappingError(
                f"{self.source}: no org unit for facility code {facility!r} "
                "(add it under [org_units])"
            ) from None

    def target(self, indicator: str, category: str | None) -> Target:
        try:
            return self.targets[(indicator, category)]
        except KeyError:
            what = indicator if category is None else f"{indicator} category {category!r}"
            raise MappingError(
                f"{self.source}: no data element for {what} (add it under [indicators])"
            ) from None


def load(path: Path) -> Mapping:
    """Read and check the mapping file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(f"mapping file {path} does not exist") from None
    except OSError as exc:
        raise MappingError(f"cannot read mapping file {path}: {exc.strerror}") from None
    return parse(text, str(path))


def parse(text: str, source: str) -> Mapping:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{source}: not valid TOML: {exc}") from None
    return _Reader(text, source).read(data)


def check_facilities(mapping: Mapping, known: Iterable[str]) -> None:
    """Every facility code in the file must be one the database knows."""
    known_codes = set(known)
    for code in mapping.org_units:
        if code not in known_codes:
            raise MappingError(
                f"{mapping.source}{line_of(mapping.lines, code)}: unknown facility code {code!r}"
            )


def line_of(lines: tuple[str, ...], key: str, after: int = 0) -> str:
    """``:N`` for the first line from ``after`` that has ``key`` as a key, or ''."""
    pattern = re.compile(rf"(^|[\s.\[{{,\"']){re.escape(key)}[\"']?\s*(=|\]|\.)")
    for number, line in enumerate(lines[after:], start=after + 1):
        if pattern.search(line.split("#", 1)[0]):
            return f":{number}"
    return ""


class _Reader:
    """Reads the parsed TOML, naming the file and line of the first mistake."""

    def __init__(self, text: str, source: str) -> None:
        self.lines = tuple(text.splitlines())
        self.source = source

    def fail(self, message: str, key: str | None = None, after: int = 0) -> MappingError:
        where = line_of(self.lines, key, after) if key else ""
        return MappingError(f"{self.source}{where}: {message}")

    def uid(self, value: Any, what: str, key: str, after: int = 0) -> str:
        if not isinstance(value, str) or not UID.match(value):
            raise self.fail(
                f"{what} must be a DHIS2 UID (11 letters and digits, a letter first), "
                f"not {value!r}",
                key,
                after,
            )
        return value

    def table(self, value: Any, what: str, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{what} must be a table", key)
        return value

    def read(self, data: dict[str, Any]) -> Mapping:
        allowed = {"data_set", "default_category_option_combo", "org_units", "indicators"}
        for key in data:
            if key not in allowed:
                raise self.fail(f"unknown setting {key!r}", key)
        for key in ("data_set", "org_units", "indicators"):
            if key not in data:
                raise self.fail(f"{key} is missing")
        data_set = self.uid(data["data_set"], "data_set", "data_set")
        default = data.get("default_category_option_combo")
        if default is not None:
            default = self.uid(
                default, "default_category_option_combo", "default_category_option_combo"
            )
        org_units = self._org_units(self.table(data["org_units"], "[org_units]", "org_units"))
        targets = self._indicators(
            self.table(data["indicators"], "[indicators]", "indicators"), default
        )
        return Mapping(self.source, data_set, org_units, targets, self.lines)

    def _org_units(self, table: dict[str, Any]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for code, value in table.items():
            uid = self.uid(value, f"the org unit of facility {code!r}", code)
            if uid in seen:
                raise self.fail(
                    f"facilities {seen[uid]!r} and {code!r} have the same org unit {uid}", code
                )
            seen[uid] = code
        return {code: uid for uid, code in seen.items()}

    def _indicators(
        self, table: dict[str, Any], default: str | None
    ) -> dict[tuple[str, str | None], Target]:
        known = exportable()
        targets: dict[tuple[str, str | None], Target] = {}
        for key, entry in table.items():
            if key not in known:
                raise self.fail(
                    f"unknown indicator {key!r}; the export produces {', '.join(sorted(known))}",
                    key,
                )
            entry = self.table(entry, f"indicator {key!r}", key)
            start = int(line_of(self.lines, key)[1:] or 1) - 1
            allowed = {"data_element", "category_option_combo", "category_option_combos"}
            for name in entry:
                if name not in allowed:
                    raise self.fail(f"unknown setting {name!r} for indicator {key!r}", name, start)
            if "data_element" not in entry:
                raise self.fail(f"indicator {key!r} has no data_element", key)
            element = self.uid(entry["data_element"], f"{key}.data_element", "data_element", start)
            options = known[key]
            if options:
                combos = self.table(
                    entry.get("category_option_combos"),
                    f"indicator {key!r} needs [indicators.{key}.category_option_combos]",
                    key,
                )
                for option, value in combos.items():
                    if option not in options:
                        raise self.fail(
                            f"unknown category {option!r} for indicator {key!r}; "
                            f"one of {', '.join(options)}",
                            option,
                            start,
                        )
                    combo = self.uid(value, f"{key} category {option!r}", option, start)
                    targets[(key, option)] = Target(element, combo)
                missing = [o for o in options if o not in combos]
                if missing:
                    raise self.fail(
                        f"indicator {key!r} has no category option combo for "
                        f"{', '.join(repr(m) for m in missing)}",
                        key,
                    )
            else:
                if "category_option_combos" in entry:
                    raise self.fail(f"indicator {key!r} has no categories", key)
                given = entry.get("category_option_combo", default)
                if given is None:
                    raise self.fail(
                        f"indicator {key!r} needs a category_option_combo "
                        "(or set default_category_option_combo)",
                        key,
                    )
                targets[(key, None)] = Target(
                    element, self.uid(given, f"{key}.category_option_combo", key)
                )
        self._no_overlap(targets)
        return targets

    def _no_overlap(self, targets: dict[tuple[str, str | None], Target]) -> None:
        seen: dict[Target, tuple[str, str | None]] = {}
        for code, target in targets.items():
            if target in seen:
                first = seen[target]
                raise self.fail(
                    f"{_name(first)} and {_name(code)} go to the same data element and "
                    f"category option combo ({target.data_element}, "
                    f"{target.category_option_combo}): DHIS2 would keep only one",
                    code[0],
                )
            seen[target] = code


def _name(code: tuple[str, str | None]) -> str:
    return code[0] if code[1] is None else f"{code[0]}/{code[1]}"
