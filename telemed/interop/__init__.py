"""Handing the platform's records to other systems in their standard formats (FHIR R4).

A read model above the domains it reads: it imports their models and repositories, never
the other way round, and writes nothing but audit rows.
"""
