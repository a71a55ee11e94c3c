"""Web input of the corpus readers: HTML pages (trafilatura) and WARC archives (FastWARC).

* ``.html``, ``.htm`` -- one document per file: the page's main text and title, extracted by
  trafilatura (navigation, footers and other boilerplate left out); id and ``url`` from the
  page's ``<link rel="canonical">`` when it is an absolute http(s) URL, else the id is the
  relative path (as for ``.txt``) and ``url`` the URL trafilatura reads from the page's metadata
  (``og:url``), if any.
* ``.warc`` -- a web archive (``.warc.gz``: gzip per record or whole file), read with FastWARC:
  one document per ``response`` record with a 2xx HTTP status and an HTML Content-Type
  (``text/html``, ``application/xhtml+xml``), text and title as for ``.html``; id and ``url``
  from ``WARC-Target-URI`` (a record without it: id ``<relative path>:<record number>``, no url);
  ``source`` is ``<path>:<record number>`` (1-based, counting every record of the file). Other
  records (warcinfo, request, metadata, revisit, images, redirects, ...) are skipped silently:
  they are not problems.

The HTTP body of a record is de-chunked (``Transfer-Encoding: chunked``: chunk-size lines end in
CRLF and carry no extensions, as FastWARC's ``ChunkedReader`` reads them) and Brotli-decoded by
FastWARC's stream decoders, and gzip/deflate-decoded by zlib (which checks the gzip trailer, so a
body cut short is a problem, not a silently shortened page). A body a crawler stored decoded
while keeping its ``Transfer-Encoding``/``Content-Encoding`` header is read as it is.

In web documents every line of the extracted text (a paragraph, heading, list item or ``<br>``
line) is one paragraph, separated by a blank line, so that the sentence splitter ends a sentence
there even without final punctuation (a heading, a list item). Tables and reader comments are
left out.

Problems of WARC files name ``file:record``: an HTML page without main text, a payload that
cannot be decompressed or decoded, a truncated record; a file that stops being WARC (or gzip)
midway ends with one problem after the documents read so far.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastwarc.stream_io import BrotliReader, ChunkedReader
from fastwarc.warc import ArchiveIterator, HeaderMap, WarcRecord, WarcRecordType

from ptoie.corpus.documents import CorpusOptions, CorpusProblem, Document, read_limited

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_CHUNK_START = re.compile(rb"[0-9a-fA-F]+[ \t]*(?:;[^\n]*)?\r?\n")
_READ_CHUNK = 1 << 20


# -- HTML -------------------------------------------------------------------------------------
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
    from trafilatura.utils import detect_encoding  # late: trafilatura is slow to import

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
    from trafilatura import bare_extraction  # late: trafilatura is slow to import
    from trafilatura.utils import load_html  # late: trafilatura is slow to import

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


def read_html(path: Path, gzipped: bool, rel: str, options: CorpusOptions
              ) -> Iterator[Document | CorpusProblem]:
    """The document of an HTML file (see the module doc), or its problem."""
    source = str(path)
    data = read_limited(path, gzipped, options, "HTML page over {:,} bytes; raise "
                                                "--max-document-bytes if it is genuine")
    if isinstance(data, CorpusProblem):
        yield data
        return
    yield _web_document(data, charset=None, source=source, fallback_id=rel, target_url=None)


# -- WARC -------------------------------------------------------------------------------------
def _drain(reader: Any, limit: int | None = None) -> tuple[bytes, int]:
    """``(bytes kept, bytes read)`` of the rest of a stream: everything is read (to tell a
    truncated WARC record), only the first ``limit + 1`` bytes kept (none if limit None)."""
    if limit is None:
        return b"", reader.consume()
    kept = bytearray()
    total = 0
    while chunk := reader.read(_READ_CHUNK):
        total += len(chunk)
        if len(kept) <= limit:
            kept += chunk[: limit + 1 - len(kept)]
    return bytes(kept), total


def _decode_stream(decoder: type, data: bytes) -> bytes:
    """``data`` read through one of FastWARC's stream decoders (OSError when it is malformed)."""
    reader = decoder(io.BytesIO(data))
    out = bytearray()
    while chunk := reader.read(_READ_CHUNK):
        out += chunk
    return bytes(out)


def _http_body(payload: bytes, headers: HeaderMap) -> bytes:
    """Undo the HTTP transfer and content encodings (chunked; gzip, deflate, br); ValueError
    (or zlib.error, OSError) when they cannot be undone."""
    transfer = (headers.get("Transfer-Encoding") or "").lower()
    if "chunked" in transfer and _CHUNK_START.match(payload):
        payload = _decode_stream(ChunkedReader, payload)
    # (no chunk size first: the crawler stored the body de-chunked, header kept)
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
            payload = _decode_stream(BrotliReader, payload)
        else:
            raise ValueError(f"unsupported Content-Encoding {encoding}")
    return payload


def _http_headers(record: WarcRecord, where: str) -> HeaderMap | CorpusProblem | None:
    """The HTTP headers of a response record (None for other records), or the problem of a
    malformed header."""
    if record.record_type != WarcRecordType.response or not record.is_http:
        return None
    try:  # quirks mode: also HTTP headers ended by bare LF, as some crawlers stored them
        record.parse_http(auto_decode="none", quirks_mode=True)
    except OSError as exc:
        if isinstance(exc, gzip.BadGzipFile):
            raise  # the file, not the record: handled by the caller
        return CorpusProblem(where, "bad_record", f"malformed HTTP header in the WARC record "
                             f"({exc}); the record is skipped")
    return record.http_headers


def _warc_record(record: WarcRecord, where: str, rel_where: str, options: CorpusOptions
                 ) -> Document | CorpusProblem | None:
    """The document of one WARC record, its problem, or None for a record that is no web page."""
    declared = record.headers.get("Content-Length")
    if declared is None or not declared.strip().isdigit():
        return CorpusProblem(where, "bad_record", "truncated WARC record (its header is cut "
                             "short: no Content-Length); the file was cut off, copy or download "
                             "it again")
    headers = _http_headers(record, where)
    if isinstance(headers, CorpusProblem):
        return headers
    expected = record.content_length  # payload bytes still to read (after the HTTP header)
    media, charset = _content_type(
        (headers.get("Content-Type") if headers is not None else None)
        or record.headers.get("WARC-Identified-Payload-Type"))
    status = headers.status_code if headers is not None else None
    wanted = media in _HTML_TYPES and status is not None and 200 <= status < 300
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


def read_warc(path: Path, gzipped: bool, rel: str, options: CorpusOptions
              ) -> Iterator[Document | CorpusProblem]:
    """Documents of a WARC file (see the module doc). Gzip is read by Python's gzip module, not
    by FastWARC, whose reader ends a truncated gzip member silently."""
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
