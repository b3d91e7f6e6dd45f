"""Pydantic's refusals as sentences a person reads next to the field, in their language.

A page form and the JSON API check their input with the same schemas, but they answer
different readers: a program wants ``string_too_short`` at ``("case", "sex")`` (the API keeps
that form, ``telemed.web.errors``), a clinician on a phone wants "Choose one of the options
for Sex." Pydantic's own messages ("Input should be 'female', 'male', 'other' or
'unknown'", "String should match pattern '^[A-Za-z]{2}$'") are English, name no field and
show the validator's insides, so every page form turns each error into a sentence here, in
one place: the error's type picks the sentence, the form names the field by its label.

A ``value_error`` is one of our own validators (``telemed.validation``) speaking: its message
is already a translated phrase and is kept, after the label. Anything this module does not
know still gets a sentence ("Check Sex: this value cannot be used."), never pydantic's text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from telemed.i18n import N_, gettext

# Each sentence names the field through %(label)s; some give the limit from pydantic's ctx.
_REQUIRED = N_("Fill in %(label)s.")
_SENTENCES: dict[str, str] = {
    "missing": _REQUIRED,
    "string_too_long": N_("%(label)s can have at most %(max_length)s characters."),
    "string_pattern_mismatch": N_("%(label)s is not in the expected form; check what you typed."),
    "enum": N_("Choose one of the options for %(label)s."),
    "literal_error": N_("Choose one of the options for %(label)s."),
    "int_parsing": N_("%(label)s must be a whole number."),
    "int_type": N_("%(label)s must be a whole number."),
    "int_from_float": N_("%(label)s must be a whole number."),
    "float_parsing": N_("%(label)s must be a number."),
    "float_type": N_("%(label)s must be a number."),
    "decimal_parsing": N_("%(label)s must be a number."),
    "finite_number": N_("%(label)s must be a number."),
    "greater_than": N_("%(label)s must be more than %(gt)s."),
    "greater_than_equal": N_("%(label)s must be %(ge)s or more."),
    "less_than": N_("%(label)s must be less than %(lt)s."),
    "less_than_equal": N_("%(label)s must be %(le)s or less."),
    "date_parsing": N_("%(label)s must be a date such as 2026-04-01."),
    "date_from_datetime_parsing": N_("%(label)s must be a date such as 2026-04-01."),
    "date_from_datetime_inexact": N_("%(label)s must be a date such as 2026-04-01."),
    "date_type": N_("%(label)s must be a date such as 2026-04-01."),
    "datetime_parsing": N_("%(label)s must be a date and time such as 2026-04-01 09:00."),
    "datetime_from_date_parsing": N_("%(label)s must be a date and time such as 2026-04-01 09:00."),
    "datetime_type": N_("%(label)s must be a date and time such as 2026-04-01 09:00."),
    "time_parsing": N_("%(label)s must be a time such as 09:00."),
    "time_type": N_("%(label)s must be a time such as 09:00."),
    "bool_parsing": N_("Choose yes or no for %(label)s."),
    "bool_type": N_("Choose yes or no for %(label)s."),
    "list_type": N_("Choose one or more for %(label)s."),
    "extra_forbidden": N_("%(label)s is not a field of this form."),
}
_TOO_FEW_CHARACTERS = N_("%(label)s needs at least %(min_length)s characters.")
_CHOOSE_ONE = N_("Choose at least one for %(label)s.")
_CHOOSE_MORE = N_("Choose at least %(min_length)s for %(label)s.")
_CHOOSE_FEWER = N_("Choose at most %(max_length)s for %(label)s.")
_EMAIL = N_("Enter an e-mail address such as name@example.org for %(label)s.")
_OURS = N_("%(label)s: %(message)s")
_UNKNOWN = N_("Check %(label)s: this value cannot be used.")
# The e-mail validator speaks through a value_error with this message.
_EMAIL_PREFIX = "value is not a valid email address"


def sentence(error: ErrorDetails, label: str) -> str:
    """``error`` as a sentence naming ``label`` (already in the reader's language)."""
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    message = str(error.get("msg", ""))
    values: dict[str, Any] = {"label": label, **{k: str(v) for k, v in ctx.items()}}
    blank = error.get("input") in ("", None) and kind not in ("enum", "literal_error")
    if blank and kind not in ("too_short", "value_error", "assertion_error"):
        return gettext(_REQUIRED) % values  # a blank field, not a slip of the keyboard
    if kind == "string_too_short":
        if int(ctx.get("min_length", 1)) <= 1:
            return gettext(_REQUIRED) % values
        return gettext(_TOO_FEW_CHARACTERS) % values
    if kind == "too_short":
        if int(ctx.get("min_length", 1)) <= 1:
            return gettext(_CHOOSE_ONE) % values
        return gettext(_CHOOSE_MORE) % values
    if kind == "too_long":
        return gettext(_CHOOSE_FEWER) % values
    if kind in ("value_error", "assertion_error"):
        if message.startswith(_EMAIL_PREFIX):
            return gettext(_EMAIL) % values
        ours = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return gettext(_OURS) % {"label": label, "message": ours}
    known = _SENTENCES.get(kind)
    if known is None:
        return gettext(_UNKNOWN) % values
    try:
        return gettext(known) % values
    except KeyError:  # a limit pydantic did not give (a custom type): the general sentence
        return gettext(_UNKNOWN) % values


def _general(error: ErrorDetails) -> str:
    """An error of no one field: our validator's own phrase, else the general sentence."""
    if error["type"] in ("value_error", "assertion_error"):
        return str(error.get("msg", "")).removeprefix("Value error, ")
    return gettext(N_("Check the form: a value cannot be used."))


def field_sentences(
    exc: ValidationError,
    labels: Mapping[str, str],
    place: Callable[[Sequence[int | str]], str] | None = None,
    special: Mapping[tuple[str, str], str] | None = None,
) -> dict[str, str]:
    """The first error of each field as a sentence, keyed by the form field it belongs to.

    ``labels`` maps a form field to its label as an ``N_`` message id (translated here);
    ``place`` says which form field an error's ``loc`` belongs to (by default the last part
    of the location that is a field of ``labels``, else its first part). A field without a
    label is named by its own name, so a sentence still comes out. ``special`` gives a
    field's own sentence (an ``N_`` id) for one error type: (field, type) -> sentence."""
    found: dict[str, str] = {}
    for error in exc.errors():
        loc = error["loc"]
        if place is not None:
            name = place(loc)
        else:
            named = [str(p) for p in loc if str(p) in labels]
            name = named[-1] if named else (str(loc[0]) if loc else "__all__")
        if name == "__all__":  # the form as a whole (a model validator)
            found.setdefault(name, _general(error))
            continue
        own = (special or {}).get((name, error["type"]))
        if own is not None:
            found.setdefault(name, gettext(own))
            continue
        label = gettext(labels[name]) if name in labels else name.replace("_", " ")
        found.setdefault(name, sentence(error, label))
    return found
