"""Load the schemas in ``schemas/`` at run time (never retyped in code)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import pyarrow as pa

from ptoie.resources import bundled_path

_ARROW_TYPES = {
    "string": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
}


def _load_json(name: str) -> dict[str, Any]:
    path = bundled_path("schemas", name)
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


@lru_cache(maxsize=None)
def triple_schema() -> pa.Schema:
    """The Arrow schema of a triple record, built from ``schemas/triple.schema.json``."""
    spec = _load_json("triple.schema.json")
    fields = []
    for field in spec["fields"]:
        try:
            arrow_type = _ARROW_TYPES[field["type"]]
        except KeyError:
            raise ValueError(
                f"schemas/triple.schema.json: field {field['name']!r} has type {field['type']!r}; "
                f"use one of {sorted(_ARROW_TYPES)}"
            ) from None
        fields.append(
            pa.field(field["name"], arrow_type, nullable=field["nullable"],
                     metadata={"doc": field["doc"]})
        )
    return pa.schema(fields, metadata={"name": spec["name"], "version": str(spec["version"])})


def triple_field_names() -> list[str]:
    return triple_schema().names


@lru_cache(maxsize=None)
def training_record_schema() -> dict[str, Any]:
    """The JSON Schema of one training record (``schemas/training_record.schema.json``)."""
    return _load_json("training_record.schema.json")


@lru_cache(maxsize=None)
def rdf_vocabulary() -> dict[str, Any]:
    """The RDF vocabulary (``schemas/rdf_vocabulary.json``)."""
    return _load_json("rdf_vocabulary.json")
