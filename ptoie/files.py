"""Durable files: atomic writes, and Parquet shards of triple records.

* :func:`atomic_path` gives a temporary sibling to write; it replaces the target only when the
  write succeeds (fsync of the file, ``os.replace``, fsync of the folder), so a reader sees the
  complete old file or the complete new one, never a part.
* :func:`write_parquet_shard` writes one shard of the triple schema that way: a shard either
  exists complete or not at all. :func:`records_table` makes the table from
  ``Triple.to_record`` rows.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ptoie.schema import triple_schema


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` to write; it replaces ``path`` only when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def records_table(records: list[dict[str, Any]]) -> pa.Table:
    """Triple records (``Triple.to_record`` rows) as a table with the project's schema."""
    return pa.Table.from_pylist(records, schema=triple_schema())


def write_parquet_shard(table: pa.Table, directory: Path, name: str) -> Path:
    """Write ``table`` as ``directory/name`` atomically; the schema must be the triple schema."""
    if not table.schema.equals(triple_schema(), check_metadata=False):
        raise ValueError(f"shard {name}: table schema differs from schemas/triple.schema.json")
    path = directory / name
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path
