"""What every resource builder shares: references, codings, times, and the check against
the ``fhir.resources`` R4B models.

Builders return plain JSON dicts (``Resource``). Serialising through the models costs about
a millisecond per resource, checking costs about half of that and writing a dict with
``json`` almost nothing, so the export checks every resource against its model
(:func:`checked`) and writes the dict it checked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

Resource = dict[str, Any]


class InvalidResource(Exception):
    """A resource the R4B model refuses: a bug in a builder, never the user's input."""


def ref(resource_type: str, resource_id: str | int, display: str | None = None) -> Resource:
    """A relative reference, resolved against the Bundle's (or server's) base."""
    found: Resource = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        found["display"] = display
    return found


def key(resource: Resource) -> str:
    """``Type/id``: what a reference to the resource says."""
    return f"{resource['resourceType']}/{resource['id']}"


def coding(system: str, code: str, display: str | None = None) -> Resource:
    found: Resource = {"system": system, "code": code}
    if display:
        found["display"] = display
    return found


def concept(system: str, code: str, display: str | None = None) -> Resource:
    return {"coding": [coding(system, code, display)], **({"text": display} if display else {})}


def text_concept(text: str) -> Resource:
    return {"text": text}


def instant(at: datetime) -> str:
    """A FHIR ``instant``/``dateTime``: UTC, with its offset, to the millisecond."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def identifier(system: str, value: str | int) -> Resource:
    return {"system": system, "value": str(value)}


def annotation(text: str, at: datetime | None = None) -> Resource:
    found: Resource = {"text": text}
    if at is not None:
        found["time"] = instant(at)
    return found


def compact(resource: Resource) -> Resource:
    """Drop empty elements: FHIR forbids empty strings, lists and objects."""
    return {k: v for k, v in resource.items() if v not in (None, "", [], {})}


@cache
def _model(resource_type: str) -> Any:
    return get_fhir_model_class(resource_type)


def checked(resource: Resource) -> Resource:
    """The resource, once its R4B model accepts it."""
    try:
        _model(resource["resourceType"]).model_validate(resource)
    except (ValidationError, ValueError, KeyError) as exc:
        raise InvalidResource(
            f"{resource.get('resourceType')}/{resource.get('id')}: {exc}"
        ) from exc
    return resource
