"""DHIS2 aggregate export and push: one month's counts and sums per facility
(``telemed.uptake.monthly``), mapped to DHIS2 data elements and org units by a mapping file,
written as ``dataValueSets`` JSON or ADX XML, and posted to ``/api/dataValueSets``.

Modules: ``codes`` (what the export can produce), ``mapping`` (the file and its
validation), ``payload`` (period, JSON, ADX), ``client`` (httpx, the import summary),
``service`` (export a file, push once per period), ``jobs`` (the monthly push),
``commands`` (``telemed dhis2``). docs/interop.md says how to configure it.
"""
