"""The Bundle ``$everything`` answers with: a searchset whose one match is the
ServiceRequest (the consult) and whose other entries are included because it refers to
them. Each entry's ``fullUrl`` is the platform's FHIR base plus ``Type/id``, so the
relative references inside the resources resolve within the Bundle (FHIR's rule: a
relative reference is resolved against the base of the entry that holds it)."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

from telemed.interop.fhir.resources.common import Resource, instant, key


def fhir_base(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/fhir"


def searchset(resources: list[Resource], base_url: str, now: datetime) -> Resource:
    """``resources[0]`` is the match; the rest are includes."""
    base = fhir_base(base_url)
    return {
        "resourceType": "Bundle",
        "id": str(uuid4()),
        "meta": {"lastUpdated": instant(now)},
        "type": "searchset",
        "timestamp": instant(now),
        "total": 1,
        "link": [
            {"relation": "self", "url": f"{base}/{key(resources[0])}/$everything"},
        ],
        "entry": [
            {
                "fullUrl": f"{base}/{key(resource)}",
                "resource": resource,
                "search": {"mode": "match" if n == 0 else "include"},
            }
            for n, resource in enumerate(resources)
        ],
    }
