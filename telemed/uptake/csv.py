"""CSV downloads: every dashboard table, and the consults behind a number, streamed.

Rows are written to the response as they come (a generator of encoded chunks), so a
million-row export holds one chunk of rows at a time; the consults' rows come from the
database in chunks too (``telemed.uptake.sql.stream``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from telemed.uptake.tables import Table

ROWS_PER_CHUNK = 500


def encode(header: list[str], rows: Iterable[list[Any]]) -> Iterator[bytes]:
    """CSV lines in UTF-8 with a byte-order mark (spreadsheets then read Sesotho names
    right), ``ROWS_PER_CHUNK`` rows per chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(header)
    for n, row in enumerate(rows, 1):
        writer.writerow(["" if v is None else v for v in row])
        if n % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def table_rows(table: Table) -> Iterator[list[Any]]:
    """A table's numbers as values (not as shown: no thousands separators or units)."""
    for row in table.rows:
        yield [cell.value for cell in row]
