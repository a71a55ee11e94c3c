"""Corpus readers for the batch job: files and directories -> documents, streamed.

Inputs are any mix of files and directories (walked recursively, in sorted order, hidden entries
and files of other types ignored). File types, each optionally gzip-compressed (``.gz``):

* ``.txt``     -- one document per file; its id is the path relative to the input root.
* ``.jsonl``   -- one document per line (a JSON object); text in ``text_field``; id from
                  ``id_field`` when the record has it, else ``<relative path>:<line number>``.
* ``.parquet`` -- one document per row; text in column ``text_field``; id from column ``id_field``
                  when present and not null, else ``<relative path>:<row number>`` (1-based).
* ``.html``, ``.htm`` -- one document per file: the page's main text and title, extracted by
                  trafilatura (navigation, footers and other boilerplate left out); id and ``url``
                  from the page's ``<link rel="canonical">`` when it is an absolute http(s) URL,
                  else the id is the relative path (as for ``.txt``) and ``url`` the URL
                  trafilatura reads from the page's metadata (``og:url``), if any.
* ``.warc``    -- a web archive (``.warc.gz``: gzip per record or whole file), read with FastWARC:
                  one document per ``response`` record with a 2xx HTTP status and an HTML
                  Content-Type (``text/html``, ``application/xhtml+xml``), text and title as for
                  ``.html``; id and ``url`` from ``WARC-Target-URI`` (a record without it:
                  id ``<relative path>:<record number>``, no url); ``source`` is
                  ``<path>:<record number>`` (1-based, counting every record of the file). Other
                  records (warcinfo, request, metadata, revisit, images, redirects, ...) are
                  skipped silently: they are not problems.

In web documents every line of the extracted text (a paragraph, heading, list item or ``<br>``
line) is one paragraph, separated by a blank line, so that the sentence splitter ends a sentence
there even without final punctuation (a heading, a list item). Tables and reader comments are
left out.

Files of other types inside a walked directory (``.md``, ``.pdf``, ...) are not read; the caller
may ask for them (``on_ignored``) to name them in its summary. A file of another type given by
name is a problem (``unsupported``).

The input root of a directory argument is the directory itself, of a file argument its parent
folder, so ids do not depend on the working directory. Bad input never raises: every unreadable
file, undecodable or binary content, empty document, over-long line or malformed record is
yielded as a :class:`CorpusProblem` naming ``file[:line]``, and reading goes on. For WARC files
that is ``file:record``: an HTML page without main text, a payload that cannot be decompressed or
decoded, a truncated record; a file that stops being WARC (or gzip) midway ends with one problem
after the documents read so far, and the next file is read.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit

FileKind = Literal["txt", "jsonl", "parquet", "html", "warc"]
ProblemKind = Literal["unreadable", "unsupported", "binary", "undecodable", "empty", "too_large",
                      "line_too_long", "bad_record", "bad_file", "language"]

_KINDS: dict[str, FileKind] = {".txt": "txt", ".jsonl": "jsonl", ".parquet": "parquet",
                               ".html": "html", ".htm": "html", ".warc": "warc"}
READ_TYPES = ".txt, .jsonl, .parquet, .html/.htm or .warc (optionally .gz)"
"""The file types read, in words."""
_PARQUET_READ_ROWS = 256
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_CHUNK_START = re.compile(rb"[0-9a-fA-F]+[ \t]*(?:;[^\n]*)?\r?\n")
_READ_CHUNK = 1 << 20


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


def file_kind(path: Path) -> tuple[FileKind | None, bool]:
    """``(kind, gzipped)`` from the file name; kind None for an unsupported type."""
    suffixes = [s.lower() for s in path.suffixes]
    gzipped = bool(suffixes) and suffixes[-1] == ".gz"
    if gzipped:
        suffixes = suffixes[:-1]
    return (_KINDS.get(suffixes[-1]) if suffixes else None), gzipped


def _open_binary(path: Path, gzipped: bool) -> IO[bytes]:
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


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


def _read_limited(path: Path, gzipped: bool, options: CorpusOptions, too_large: str
                  ) -> bytes | CorpusProblem:
    """The file's bytes, or a ``too_large`` problem (``too_large`` formatted with the limit) when
    it holds more than ``max_document_bytes``."""
    with _open_binary(path, gzipped) as fh:
        data = fh.read(options.max_document_bytes + 1)
    if len(data) > options.max_document_bytes:
        return CorpusProblem(str(path), "too_large", too_large.format(options.max_document_bytes))
    return data


def _read_txt(path: Path, gzipped: bool, rel: str, options: CorpusOptions
              ) -> Iterator[Document | CorpusProblem]:
    source = str(path)
    data = _read_limited(path, gzipped, options, "document over {:,} bytes; split it into several "
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
    with _open_binary(path, gzipped) as fh:
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
    import pyarrow as pa
    import pyarrow.parquet as pq

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


def _content_type(value: str | None) -> tuple[str | None, str | None]:
    """``(media type, charset)`` of a Content-Type header value, both lower case."""
    if not value or not value.strip():
        return None, None
    message = Message()
    message["content-type"] = value
    return message.get_content_type(), message.get_content_charset()


def _decode_html(data: bytes, charset: str | None, source: str) -> str | CorpusProblem:
    """HTML bytes -> text: the declared ``charset`` (HTTP header; a BOM wins over it), else UTF-8,
    else the encodings trafilatura guesses (charset-normalizer, which also reads a
    ``<meta charset>``); each strictly, the first that decodes the whole payload wins."""
    from trafilatura.utils import detect_encoding

    bom = data.startswith(b"\xef\xbb\xbf")
    if bom:
        data = data[3:]

    def candidates() -> Iterator[str | None]:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            yield "utf-16"
        yield from (["utf-8", charset] if bom else [charset, "utf-8"])
        try:
            guesses = detect_encoding(data)
        except Exception:  # noqa: BLE001 -- a failing guesser is one more failed guess
            return
        # UTF-16/32 without a BOM is a guess that turns any even-length bytes into CJK garbage
        yield from (g for g in guesses if "16" not in g and "32" not in g)

    text = None
    for candidate in candidates():
        try:
            text = data.decode(candidate) if candidate else None
        except (LookupError, UnicodeDecodeError):
            continue
        if text is not None:
            break
    if text is None:
        declared = f"the declared charset {charset}, " if charset else ""
        return CorpusProblem(source, "undecodable",
                             f"HTML not decodable as {declared}UTF-8 or any encoding "
                             f"charset-normalizer recognises (binary data?); convert it to UTF-8")
    nul = text.find("\x00")
    if nul >= 0:
        return CorpusProblem(source, "binary", f"binary content (NUL character at offset {nul}); "
                             f"not an HTML page")
    return text


def _canonical_url(tree: Any) -> str | None:
    """The page's ``<link rel="canonical">`` URL when it is an absolute http(s) URL, else None
    (a relative one names no page by itself)."""
    for link in tree.iterfind(".//link[@rel][@href]"):
        if "canonical" in link.get("rel", "").lower().split():
            url = link.get("href", "").strip()
            parts = urlsplit(url)
            return url if parts.scheme in ("http", "https") and parts.netloc else None
    return None


def _paragraphs(text: str) -> str:
    """trafilatura's text, one line per block, with blank lines between blocks (the sentence
    splitter's paragraph break) and list-item markers (``- ``) removed."""
    blocks = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("- "):
            line = line[2:].lstrip()
        if line:
            blocks.append(line)
    return "\n\n".join(blocks)


def _web_document(data: bytes, *, charset: str | None, source: str, fallback_id: str,
                  target_url: str | None) -> Document | CorpusProblem:
    """A :class:`Document` of an HTML page (main text and title from trafilatura), or the problem.

    ``target_url`` (the WARC-Target-URI) is the id and url when given; else the canonical URL,
    else ``fallback_id`` (then ``url`` is trafilatura's metadata URL, e.g. ``og:url``).
    """
    from trafilatura import bare_extraction
    from trafilatura.utils import load_html

    text = _decode_html(data, charset, source)
    if isinstance(text, CorpusProblem):
        return text
    try:
        tree = load_html(text) if text.strip() else None
        canonical = _canonical_url(tree) if tree is not None and not target_url else None
        extracted = None if tree is None else bare_extraction(
            tree, url=target_url, with_metadata=True, include_comments=False,
            include_tables=False)
    except Exception as exc:  # noqa: BLE001 -- arbitrary web input must not stop the job
        return CorpusProblem(source, "bad_record", f"HTML text extraction failed "
                             f"({type(exc).__name__}: {exc}); the page is skipped")
    body = _paragraphs(extracted.text or "") if extracted is not None else ""
    if not body:
        return CorpusProblem(source, "empty", "HTML page without main text (trafilatura found "
                             "no text outside navigation, scripts and boilerplate)")
    title = (extracted.title or "").strip() or None
    if target_url:
        doc_id, url = target_url, target_url
    else:
        doc_id = canonical or fallback_id
        url = canonical or (extracted.url or "").strip() or None
    return Document(doc_id=doc_id, text=body, source=source, url=url, title=title)


def _read_html(path: Path, gzipped: bool, rel: str, options: CorpusOptions
               ) -> Iterator[Document | CorpusProblem]:
    source = str(path)
    data = _read_limited(path, gzipped, options, "HTML page over {:,} bytes; raise "
                                                 "--max-document-bytes if it is genuine")
    if isinstance(data, CorpusProblem):
        yield data
        return
    yield _web_document(data, charset=None, source=source, fallback_id=rel, target_url=None)


def _drain(reader: Any, limit: int | None = None) -> tuple[bytes, int]:
    """``(bytes kept, bytes read)`` of the rest of a WARC record's payload: everything is read
    (to tell a truncated record), only the first ``limit + 1`` bytes kept (none if limit None)."""
    if limit is None and hasattr(reader, "consume"):
        return b"", reader.consume()
    kept = bytearray()
    total = 0
    while chunk := reader.read(_READ_CHUNK):
        total += len(chunk)
        if limit is not None and len(kept) <= limit:
            kept += chunk[: limit + 1 - len(kept)]
    return bytes(kept), total


def _dechunk(data: bytes) -> bytes:
    """The body of an HTTP ``Transfer-Encoding: chunked`` message; ValueError if malformed."""
    out = bytearray()
    pos = 0
    while True:
        eol = data.find(b"\n", pos)
        if eol < 0:
            raise ValueError("chunk size line missing")
        size = int(data[pos:eol].split(b";")[0].strip() or b"x", 16)
        if size == 0:
            return bytes(out)
        start = eol + 1
        if start + size > len(data):
            raise ValueError("last chunk cut short")
        out += data[start:start + size]
        pos = start + size
        pos += 2 if data[pos:pos + 2] == b"\r\n" else 1 if data[pos:pos + 1] == b"\n" else 0


def _http_body(payload: bytes, headers: Any) -> bytes:
    """Undo the HTTP transfer and content encodings (chunked; gzip, deflate, br); ValueError
    (or zlib.error, OSError) when they cannot be undone."""
    transfer = (headers.get("Transfer-Encoding") or "").lower()
    if "chunked" in transfer:
        try:
            payload = _dechunk(payload)
        except ValueError:
            if _CHUNK_START.match(payload):
                raise
            # no chunk size first: the crawler stored the body de-chunked, header kept
    encodings = [e.strip().lower() for e in (headers.get("Content-Encoding") or "").split(",")]
    for encoding in reversed([e for e in encodings if e and e != "identity"]):
        if encoding in ("gzip", "x-gzip"):
            if payload[:2] != b"\x1f\x8b":
                continue  # no gzip header: stored decoded, header kept (some crawlers do)
            payload = zlib.decompress(payload, wbits=31)
        elif encoding == "deflate":
            try:
                payload = zlib.decompress(payload)
            except zlib.error:
                payload = zlib.decompress(payload, wbits=-15)  # raw deflate, as some servers send
        elif encoding == "br":
            try:
                import brotli
            except ImportError:
                raise ValueError("Content-Encoding br needs the brotli package") from None
            payload = brotli.decompress(payload)
        else:
            raise ValueError(f"unsupported Content-Encoding {encoding}")
    return payload


def _warc_record(record: Any, where: str, rel_where: str, options: CorpusOptions
                 ) -> Document | CorpusProblem | None:
    """The document of one WARC record, its problem, or None for a record that is no web page."""
    from fastwarc.warc import WarcRecordType

    declared = record.headers.get("Content-Length")
    if declared is None or not declared.strip().isdigit():
        return CorpusProblem(where, "bad_record", "truncated WARC record (its header is cut "
                             "short: no Content-Length); the file was cut off, copy or download "
                             "it again")
    http = record.record_type == WarcRecordType.response and record.is_http
    if http:
        try:  # quirks mode: also HTTP headers ended by bare LF, as some crawlers stored them
            record.parse_http(auto_decode="none", quirks_mode=True)
        except TypeError:  # FastWARC < 2 has no quirks_mode
            record.parse_http()
        except OSError as exc:
            if isinstance(exc, gzip.BadGzipFile):
                raise  # the file, not the record: handled by the caller
            return CorpusProblem(where, "bad_record", f"malformed HTTP header in the WARC record "
                                 f"({exc}); the record is skipped")
    expected = record.content_length  # payload bytes still to read (after the HTTP header)
    headers = record.http_headers if http else None
    media, charset = _content_type(
        (headers.get("Content-Type") if headers is not None else None)
        or record.headers.get("WARC-Identified-Payload-Type"))
    status = getattr(headers, "status_code", None) if headers is not None else None
    wanted = (record.record_type == WarcRecordType.response and headers is not None
              and media in _HTML_TYPES and status is not None and 200 <= status < 300)
    payload, got = _drain(record.reader, options.max_document_bytes if wanted else None)
    if got < expected:
        return CorpusProblem(where, "bad_record", f"truncated WARC record ({got:,} of "
                             f"{expected:,} payload bytes); the file was cut off, copy or "
                             f"download it again")
    if not wanted:
        return None
    if len(payload) > options.max_document_bytes:
        return CorpusProblem(where, "too_large", f"HTML payload over "
                             f"{options.max_document_bytes:,} bytes; raise --max-document-bytes "
                             f"if it is genuine")
    try:
        body = _http_body(payload, headers)
    except (ValueError, OSError, zlib.error) as exc:
        return CorpusProblem(where, "undecodable", f"HTTP body cannot be decoded ({exc}); the "
                             f"crawler stored a broken or unsupported encoding")
    target = (record.headers.get("WARC-Target-URI") or "").strip().strip("<>") or None
    return _web_document(body, charset=charset, source=where, fallback_id=rel_where,
                         target_url=target)


class _GzipShortReads:
    """A gzip stream whose ``read`` returns what one step of decompression gives (``read1``): the
    records before a corrupt or cut-off gzip member reach FastWARC before the error does (a plain
    ``read`` of many members drops the data it had when one fails)."""

    def __init__(self, fh: gzip.GzipFile) -> None:
        self._fh = fh

    def read(self, size: int = -1) -> bytes:
        return self._fh.read1(size if size and size > 0 else _READ_CHUNK)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()


def _read_warc(path: Path, gzipped: bool, rel: str, options: CorpusOptions
               ) -> Iterator[Document | CorpusProblem]:
    """Documents of a WARC file (see the module doc). Gzip is read by Python's gzip module, not
    by FastWARC, whose reader ends a truncated gzip member silently."""
    from fastwarc.warc import ArchiveIterator

    source = str(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"  # by content, not name: .warc may be gzipped
        raw.seek(0)
        stream = _GzipShortReads(gzip.GzipFile(fileobj=raw, mode="rb")) if compressed else raw
        done = 0  # records read completely
        try:  # strict WARC parsing: garbage between records is an error, not silently skipped
            for record in ArchiveIterator(stream, parse_http=False):
                number = done + 1
                item = _warc_record(record, f"{source}:{number}", f"{rel}:{number}", options)
                done = number
                if item is not None:
                    yield item
        except (OSError, EOFError, zlib.error) as exc:
            gzip_error = isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile))
            what = "corrupt or truncated gzip data" if gzip_error else "not valid WARC"
            after = f"after record {done}" if done else "at its start"
            yield CorpusProblem(f"{source}:{done + 1}", "unreadable" if gzip_error else "bad_file",
                                f"{what} {after} ({exc}); the rest of the file is skipped (the "
                                f"file is damaged or cut off: copy or download it again)",
                                scope="file")
            return
    if done == 0:
        yield CorpusProblem(source, "empty", "no WARC records in the file", scope="file")


_READERS = {"txt": _read_txt, "jsonl": _read_jsonl, "parquet": _read_parquet, "html": _read_html,
            "warc": _read_warc}


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
