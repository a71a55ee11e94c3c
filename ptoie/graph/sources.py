"""Parquet sources: the files of triples a graph is built from, read as tables of the triple schema.

* :func:`parquet_sources` lists the Parquet files of the paths a user names (files, folders).
* :func:`read_triples` reads one file, :class:`TripleReader` row ranges of files in bounded row
  batches; both give tables of ``schemas/triple.schema.json`` (:func:`conform_triples`).
* :func:`confident_rows` keeps the rows at or above a ``--min-confidence`` (:func:`confidence`).
* :func:`duckdb_connection` is the DuckDB every query of the graph stage runs on, and
  :func:`triples_view` its view of the Parquet sources.

A file that is not a table of triples is a :class:`GraphInputError` naming the file.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ptoie.schema import triple_schema

READ_ROWS = 8192
"""Rows per Parquet read batch."""
DUCKDB_MEMORY_LIMIT = "128MB"
"""DuckDB's memory bound (it spills to the system's temporary folder beyond it): its queries run
beside the store's bulk loads and the RDF serialisation. ``ptoie-kg`` on 1,000,000 synthetic
triples (every default output) peaked at 995 MB with 128 MB, 1,044 MB with 256 MB (2026-12-04)."""


def duckdb_connection() -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection whose memory is bounded (:data:`DUCKDB_MEMORY_LIMIT`);
    it spills to ``<temporary folder>/ptoie-duckdb-<uid>``, one folder per user (another user's
    may not be writable; Windows' temporary folder is the user's own)."""
    user = f"-{os.getuid()}" if hasattr(os, "getuid") else ""
    spill = Path(tempfile.gettempdir()) / f"ptoie-duckdb{user}"
    return duckdb.connect(config={"memory_limit": DUCKDB_MEMORY_LIMIT,
                                  "temp_directory": str(spill)})


def triples_view(con: duckdb.DuckDBPyConnection, files: Sequence[Path], *, columns: str = "*",
                 where: str | None = None) -> None:
    """Create (or replace) the DuckDB view ``triples``: ``columns`` of the rows of the Parquet
    ``files`` that meet the SQL condition ``where``. The files are read by name when they share
    one schema, as a job's shards do (``union_by_name`` costs a schema read per file: 1.4 GB and
    twice the time on 25,000 shards); files of different schemas, as a user may give
    ``ptoie-kg``, are then unified by name. Raises ``duckdb.Error`` when they cannot be read."""
    listing = ", ".join("'" + str(path).replace("'", "''") + "'" for path in files)
    condition = f" WHERE {where}" if where else ""
    for options in ("", ", union_by_name = true"):
        try:
            con.execute(f"CREATE OR REPLACE VIEW triples AS SELECT {columns} FROM "
                        f"read_parquet([{listing}]{options}){condition}")
            # every column of every file read (a count alone would read none)
            con.execute("SELECT count(hash(t)) FROM triples t").fetchall()
            return
        except duckdb.Error:
            if options:
                raise


def confidence_condition(min_confidence: float | None) -> str | None:
    """The SQL condition of ``--min-confidence`` (None: every row)."""
    return None if min_confidence is None else f"confidence >= {float(min_confidence)!r}"


class GraphInputError(ValueError):
    """A Parquet source that is not a table of triples; the message names the file."""


def confidence(value: str) -> float:
    """A ``--min-confidence`` value: a number from 0 to 1 (an argparse type)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (got {value})")
    return number


def confident_rows(table: pa.Table, min_confidence: float | None) -> pa.Table:
    """The rows whose confidence is known and at least ``min_confidence`` (all when None)."""
    if min_confidence is None:
        return table
    return table.filter(pc.greater_equal(table.column("confidence"), min_confidence))


def parquet_sources(paths: Sequence[Path]) -> list[Path]:
    """Parquet files of ``paths``: files as given, folders expanded to their ``*.parquet`` files
    (recursively, sorted; ``_``- and ``.``-prefixed entries skipped, as pyarrow.dataset does, so a
    job's bookkeeping and temporary files are never read). Raises :class:`GraphInputError` for a
    missing path and when there is no Parquet file at all (an empty graph)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.parquet") if p.is_file() and not any(
                part.startswith(("_", ".")) for part in p.relative_to(path).parts))
        elif path.is_file():
            files.append(path)
        else:
            raise GraphInputError(f"no Parquet triples at {path}: no such file or folder")
    if not files:
        where = ", ".join(map(str, paths)) or "(no path given)"
        raise GraphInputError(f"{where}: no Parquet file in this folder: the graph is empty")
    return files


def read_triples(path: Path) -> pa.Table:
    """One Parquet file as a table of the triple schema (``schemas/triple.schema.json``).

    Columns are matched by name and cast to the schema's types (a table written by DuckDB or
    polars fits); nullable columns it lacks (``doc_url`` of an older file, say) are null. Raises
    :class:`GraphInputError` naming the file and the column when it is not a table of triples."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise GraphInputError(f"{path}: not a readable Parquet file ({exc})") from None
    return conform_triples(table, path)


def count_rows(path: Path) -> int:
    """Rows of a Parquet file of triples, from its footer; :class:`GraphInputError` naming the
    file when it is not readable or lacks a column of the triple schema that may not be null."""
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise GraphInputError(f"{path}: not a readable Parquet file ({exc})") from None
    names = set(parquet.schema_arrow.names)
    for target in triple_schema():
        if not target.nullable and target.name not in names:
            raise _missing_column(path, target.name)
    return parquet.metadata.num_rows


def _missing_column(path: Path, name: str) -> GraphInputError:
    return GraphInputError(f"{path}: column {name!r} is missing; a table of triples has the "
                           f"columns of schemas/triple.schema.json "
                           f"({', '.join(triple_schema().names)})")


class TripleReader:
    """Reads row ranges of Parquet files as tables of the triple schema (see
    :func:`read_triples`) of at most ``READ_ROWS`` rows, in row batches. Consecutive ranges of a
    file continue the same read; another range starts at its file's first row group that holds
    it."""

    def __init__(self) -> None:
        self._path: Path | None = None
        self._row = 0
        self._batches: Iterator[pa.RecordBatch] = iter(())
        self._left: pa.RecordBatch | None = None

    def _open(self, path: Path, start: int) -> None:
        parquet = pq.ParquetFile(path)
        names = set(parquet.schema_arrow.names)
        columns = [name for name in triple_schema().names if name in names]
        groups, row = [], 0
        for index in range(parquet.metadata.num_row_groups):
            size = parquet.metadata.row_group(index).num_rows
            if row + size > start or groups:
                groups.append(index)
            else:
                row += size
        self._path, self._row, self._left = path, row, None
        self._batches = parquet.iter_batches(batch_size=READ_ROWS, row_groups=groups,
                                             columns=columns)

    def read(self, path: Path, start: int, stop: int) -> Iterator[pa.Table]:
        """Rows ``start`` to ``stop`` (exclusive) of ``path``."""
        try:
            if path != self._path or start != self._row:
                self._open(path, start)
            while self._row < stop:
                batch = self._left if self._left is not None else next(self._batches, None)
                self._left = None
                if batch is None:
                    return
                first = self._row
                if first + batch.num_rows <= start:  # before the range (a reopened read)
                    self._row += batch.num_rows
                    continue
                skip = max(start - first, 0)
                take = min(stop - first, batch.num_rows) - skip
                if skip + take < batch.num_rows:
                    self._left = batch.slice(skip + take)
                self._row = first + skip + take
                yield conform_triples(pa.Table.from_batches([batch.slice(skip, take)]), path)
        except (OSError, pa.ArrowException) as exc:
            raise GraphInputError(f"{path}: not a readable Parquet file ({exc})") from None


def conform_triples(table: pa.Table, path: Path) -> pa.Table:
    """``table`` (read from ``path``) with the columns and types of the triple schema."""
    schema = triple_schema()
    columns = []
    for target in schema:
        if target.name not in table.column_names:
            if not target.nullable:
                raise _missing_column(path, target.name)
            columns.append(pa.nulls(table.num_rows, target.type))
            continue
        column = table.column(target.name)
        try:
            column = column.cast(target.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise GraphInputError(f"{path}: column {target.name!r} is {column.type}, not "
                                  f"{target.type}") from None
        if not target.nullable and column.null_count:
            raise GraphInputError(f"{path}: column {target.name!r} has {column.null_count} null "
                                  f"values; it may not be null")
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)
