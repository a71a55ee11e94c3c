"""Corpus readers for the batch job: files and directories -> documents, streamed.

Inputs are any mix of files and directories (walked recursively, in sorted order, hidden entries
and files of other types ignored). File types, each optionally gzip-compressed (``.gz``):

* ``.txt``     -- one document per file; its id is the path relative to the input root.
* ``.jsonl``   -- one document per line (a JSON object); text in ``text_field``; id from
                  ``id_field`` when the record has it, else ``<relative path>:<line number>``.
* ``.parquet`` -- one document per row; text in column ``text_field``; id from column ``id_field``
                  when present and not null, else ``<relative path>:<row number>`` (1-based).
* ``.html``, ``.htm`` and ``.warc`` -- web pages and web archives, read by :mod:`ptoie.corpus.web`.

Files of other types inside a walked directory (``.md``, ``.pdf``, ...) are not read; the caller
may ask for them (``on_ignored``) to name them in its summary. A file of another type given by
name is a problem (``unsupported``).

The input root of a directory argument is the directory itself, of a file argument its parent
folder, so ids do not depend on the working directory. Bad input never raises: every unreadable
file, undecodable or binary content, empty document, over-long line or malformed record is
yielded as a :class:`CorpusProblem` naming ``file[:line]``, and reading goes on (for WARC files
``file:record``; a file that stops being WARC or gzip midway ends with one problem after the
documents read so far, and the next file is read).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from ptoie.corpus.documents import CorpusOptions, CorpusProblem, Document, open_binary, read_limited
from ptoie.corpus.web import read_html, read_warc

FileKind = Literal["txt", "jsonl", "parquet", "html", "warc"]

_KINDS: dict[str, FileKind] = {".txt": "txt", ".jsonl": "jsonl", ".parquet": "parquet",
                               ".html": "html", ".htm": "html", ".warc": "warc"}
READ_TYPES = ".txt, .jsonl, .parquet, .html/.htm or .warc (optionally .gz)"
"""The file types read, in words."""
_PARQUET_READ_ROWS = 256


def file_kind(path: Path) -> tuple[FileKind | None, bool]:
    """``(kind, gzipped)`` from the file name; kind None for an unsupported type."""
    suffixes = [s.lower() for s in path.suffixes]
    gzipped = bool(suffixes) and suffixes[-1] == ".gz"
    if gzipped:
        suffixes = suffixes[:-1]
    return (_KINDS.get(suffixes[-1]) if suffixes else None), gzipped


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _walk(directory: Path, problems: list[CorpusProblem],
          on_ignored: Callable[[Path], None] | None = None) -> Iterator[Path]:
    def on_error(exc: OSError) -> None:
        problems.append(CorpusProblem(str(exc.filename or directory), "unreadable",
                                      f"cannot list directory ({exc.strerror}); fix its permissions",
                                      scope="file"))

    for dirpath, dirnames, filenames in os.walk(directory, onerror=on_error):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith("."):
                continue
            if file_kind(path)[0] is not None:
                yield path
            elif on_ignored is not None:
                on_ignored(path)


def _decode_error(source: str, data: bytes, exc: UnicodeDecodeError, *, first_line: int = 1
                  ) -> CorpusProblem:
    line = first_line + data[: exc.start].count(b"\n")
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return CorpusProblem(
        f"{source}:{line}", "undecodable",
        f"not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}); convert the file to "
        f"UTF-8, e.g. iconv -f latin1 -t utf-8",
    )


def _read_txt(path: Path, gzipped: bool, rel: str, options: CorpusOptions
              ) -> Iterator[Document | CorpusProblem]:
    source = str(path)
    data = read_limited(path, gzipped, options, "document over {:,} bytes; split it into several "
                                                "files or raise --max-document-bytes")
    if isinstance(data, CorpusProblem):
        yield data
        return
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data[:nul].count(b"\n") + 1
        yield CorpusProblem(f"{source}:{line}", "binary",
                            f"binary content (NUL byte at offset {nul}); only UTF-8 text is read")
        return
    for number, line in enumerate(data.split(b"\n"), start=1):
        if len(line) > options.max_line_bytes:
            yield CorpusProblem(f"{source}:{number}", "line_too_long",
                                f"line of {len(line):,} bytes (limit {options.max_line_bytes:,}); "
                                f"break it into paragraphs or raise --max-line-bytes")
            return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield _decode_error(source, data, exc)
        return
    if not text.strip():
        yield CorpusProblem(source, "empty", "empty document (no text)")
        return
    yield Document(doc_id=rel, text=text, source=source)


def _lines(fh: IO[bytes], max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, line)`` of ``fh``; line None (and the rest of it skipped) when too long."""
    number = 0
    while True:
        line = fh.readline(max_bytes + 1)
        if not line:
            return
        number += 1
        if len(line) > max_bytes and not line.endswith(b"\n"):
            while (chunk := fh.readline(1 << 20)) and not chunk.endswith(b"\n"):
                pass
            yield number, None
        else:
            yield number, line


def _doc_id(record_id: object, fallback: str) -> str:
    if record_id is None or isinstance(record_id, (dict, list)):
        return fallback
    return str(record_id) if str(record_id).strip() else fallback


def _read_jsonl(path: Path, gzipped: bool, rel: str, options: CorpusOptions
                ) -> Iterator[Document | CorpusProblem]:
    source = str(path)
    with open_binary(path, gzipped) as fh:
        for number, raw in _lines(fh, options.max_line_bytes):
            where = f"{source}:{number}"
            if raw is None:
                yield CorpusProblem(where, "line_too_long",
                                    f"line over {options.max_line_bytes:,} bytes; "
                                    f"raise --max-line-bytes if the record is genuine")
                continue
            if not raw.strip():
                continue
            if b"\x00" in raw:
                yield CorpusProblem(where, "binary", "binary content (NUL byte); not a JSON line")
                continue
            try:
                record = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
            except UnicodeDecodeError as exc:
                yield _decode_error(source, raw, exc, first_line=number)
                continue
            except json.JSONDecodeError as exc:
                yield CorpusProblem(where, "bad_record", f"not valid JSON ({exc.msg} at column "
                                    f"{exc.colno}); each line must be one JSON object")
                continue
            if not isinstance(record, dict):
                yield CorpusProblem(where, "bad_record",
                                    f"a JSON {type(record).__name__}, not an object")
                continue
            text = record.get(options.text_field)
            if not isinstance(text, str):
                found = ", ".join(sorted(map(str, record))[:8]) or "none"
                yield CorpusProblem(where, "bad_record",
                                    f"no string field {options.text_field!r} (fields: {found}); "
                                    f"name the text field with --text-field")
                continue
            if not text.strip():
                yield CorpusProblem(where, "empty", f"empty {options.text_field!r} field")
                continue
            yield Document(doc_id=_doc_id(record.get(options.id_field), f"{rel}:{number}"),
                           text=text, source=where)


def _read_parquet(path: Path, gzipped: bool, rel: str, options: CorpusOptions
                  ) -> Iterator[Document | CorpusProblem]:
    source = str(path)
    with tempfile.TemporaryDirectory(prefix="ptoie-parquet-") as tmp:
        if gzipped:  # Parquet needs random access: unpack to a temporary file first
            local = Path(tmp) / "data.parquet"
            with gzip.open(path, "rb") as src, open(local, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        else:
            local = path
        try:
            parquet = pq.ParquetFile(local)
        except (pa.ArrowException, OSError) as exc:
            yield CorpusProblem(source, "bad_file", f"not a readable Parquet file ({exc})",
                                scope="file")
            return
        names = parquet.schema_arrow.names
        if options.text_field not in names:
            yield CorpusProblem(source, "bad_file",
                                f"no column {options.text_field!r} (columns: {', '.join(names)}); "
                                f"name the text column with --text-field", scope="file")
            return
        columns = [options.text_field] + ([options.id_field] if options.id_field in names else [])
        row = 0
        for batch in parquet.iter_batches(batch_size=_PARQUET_READ_ROWS, columns=columns):
            texts = batch.column(options.text_field).to_pylist()
            ids = (batch.column(options.id_field).to_pylist() if options.id_field in columns
                   else [None] * len(texts))
            for text, record_id in zip(texts, ids):
                row += 1
                where = f"{source}:{row}"
                if not isinstance(text, str) or not text.strip():
                    yield CorpusProblem(where, "empty", f"empty or non-text {options.text_field!r}")
                    continue
                yield Document(doc_id=_doc_id(record_id, f"{rel}:{row}"), text=text, source=where)


_READERS = {"txt": _read_txt, "jsonl": _read_jsonl, "parquet": _read_parquet, "html": read_html,
            "warc": read_warc}


def _read_file(path: Path, root: Path, options: CorpusOptions) -> Iterator[Document | CorpusProblem]:
    kind, gzipped = file_kind(path)
    if kind is None:
        yield CorpusProblem(str(path), "unsupported",
                            f"unsupported file type; use {READ_TYPES}",
                            scope="file")
        return
    try:
        yield from _READERS[kind](path, gzipped, _rel(path, root), options)
    except (OSError, EOFError, zlib.error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        what = "corrupt gzip data" if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)) \
            else "cannot read"
        yield CorpusProblem(str(path), "unreadable", f"{what} ({reason}); the rest of the file "
                            f"is skipped", scope="file")


def read_corpus(inputs: Iterable[str | os.PathLike[str]], options: CorpusOptions = CorpusOptions(),
                *, on_ignored: Callable[[Path], None] | None = None
                ) -> Iterator[Document | CorpusProblem]:
    """Documents of ``inputs`` in a stable order, with a :class:`CorpusProblem` for each bad input.
    ``on_ignored`` gets each file of a walked directory whose type is not read (hidden entries
    aside); such files are not problems."""
    for item in map(Path, inputs):
        if item.is_dir():
            problems: list[CorpusProblem] = []
            for path in _walk(item, problems, on_ignored):
                yield from problems
                problems.clear()
                yield from _read_file(path, item, options)
            yield from problems
        elif item.exists():
            yield from _read_file(item, item.parent, options)
        else:
            yield CorpusProblem(str(item), "unreadable", "no such file or directory", scope="file")
