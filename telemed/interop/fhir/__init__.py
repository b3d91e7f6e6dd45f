"""FHIR R4 export of consults: one consult as a Bundle (``$everything``), or every consult
changed since a date as bulk NDJSON (``telemed fhir export``).

``record`` loads what a consult holds, ``resources`` maps it to FHIR resources (plain JSON
dicts, checked against the ``fhir.resources`` R4B models), ``bundle`` and ``bulk`` package
them, ``endpoints`` serves them. docs/interop.md describes the mapping.
"""
