"""What the corpus readers give: :class:`Document` records, :class:`CorpusProblem` for bad input,
and the :class:`CorpusOptions` that bound what is read."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

ProblemKind = Literal["unreadable", "unsupported", "binary", "undecodable", "empty", "too_large",
                      "line_too_long", "bad_record", "bad_file", "language"]


@dataclass(frozen=True, slots=True)
class Document:
    """One document of the corpus: its id, its text, and where it came from."""

    doc_id: str
    text: str
    source: str
    """Where it came from: ``path`` (txt, html) or ``path:line`` / ``path:row`` /
    ``path:record`` (WARC)."""
    url: str | None = None
    """Web documents: the page's URL (``WARC-Target-URI``, or the canonical URL of an HTML file);
    None for other documents."""
    title: str | None = None
    """Web documents: the page title as trafilatura extracts it; None when it has none and for
    other documents."""


@dataclass(frozen=True, slots=True)
class CorpusProblem:
    """Input that was skipped: ``source`` is ``file`` or ``file:line``; ``message`` says why and how
    to fix it."""

    source: str
    kind: ProblemKind
    message: str
    scope: Literal["file", "document"] = "document"
    """What was skipped: one document (a .txt file, a record, a row) or a whole file."""

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CorpusOptions:
    text_field: str = "text"
    """JSONL key / Parquet column holding the document text."""
    id_field: str = "id"
    """JSONL key / Parquet column holding the document id (optional in the data)."""
    max_line_bytes: int = 500_000
    """Longer lines (a minified blob, a binary dump) are skipped: the whole ``.txt`` document, or
    the one JSONL record."""
    max_document_bytes: int = 20_000_000
    """Larger ``.txt`` documents are skipped (split them into several files)."""


def open_binary(path: Path, gzipped: bool) -> IO[bytes]:
    """``path`` opened for reading bytes, through gzip when ``gzipped``."""
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_limited(path: Path, gzipped: bool, options: CorpusOptions, too_large: str
                 ) -> bytes | CorpusProblem:
    """The file's bytes, or a ``too_large`` problem (``too_large`` formatted with the limit) when
    it holds more than ``max_document_bytes``."""
    with open_binary(path, gzipped) as fh:
        data = fh.read(options.max_document_bytes + 1)
    if len(data) > options.max_document_bytes:
        return CorpusProblem(str(path), "too_large", too_large.format(options.max_document_bytes))
    return data
