"""The content hash of a Parquet dataset of triples: did a change alter what a job wrote?

    python bench/parquet_hash.py out/kg.parquet

Prints the row count and the first 16 hex digits of the SHA-256 of every row (all columns, by
name) in (doc_id, sentence_id, extraction_index) order, so shard names and row order do not
count. Two runs that wrote the same triples print the same line.
"""

from __future__ import annotations

import argparse
import hashlib

import pyarrow.dataset as ds

_ORDER = ("doc_id", "sentence_id", "extraction_index")


def content_hash(path: str) -> tuple[int, str]:
    table = ds.dataset(path, format="parquet").to_table()
    table = table.select(sorted(table.column_names))
    table = table.sort_by([(c, "ascending") for c in _ORDER if c in table.column_names])
    digest = hashlib.sha256()
    for row in table.to_pylist():
        digest.update(repr(sorted(row.items())).encode())
    return table.num_rows, digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="a Parquet file or dataset folder")
    rows, digest = content_hash(parser.parse_args().dataset)
    print(f"{rows} rows {digest}")


if __name__ == "__main__":
    main()
