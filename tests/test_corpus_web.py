"""Web input of the corpus reader: HTML pages and WARC archives (ptoie/corpus/web.py).

Every fixture is written here, in tmp_path: HTML pages with boilerplate, WARC files written with
FastWARC's record writer (gzip per record for .warc.gz) or as raw WARC/1.0 bytes, damaged files.
trafilatura and FastWARC run for real.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import zlib
from pathlib import Path

import pytest
from fastwarc.stream_io import BrotliWriter
from fastwarc.warc import WarcRecord, WarcRecordType

from ptoie.corpus import CorpusOptions, CorpusProblem, Document, file_kind, read_corpus
from ptoie.text.sentences import split_sentences

CANONICAL = "https://geografia.example.pt/artigos/rio-amazonas"

BOILERPLATE = ["Início", "Sobre nós", "Contato", "Todos os direitos reservados",
               "Política de privacidade", "Assine a nossa newsletter"]


def page(title: str, heading: str, paragraphs: list[str], *, head_extra: str = "",
         charset: str = "utf-8") -> str:
    """A Portuguese article page with navigation, a sidebar and a footer around the article."""
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="pt"><head><meta charset="{charset}"><title>{title}</title>{head_extra}</head>
<body>
<header><nav><ul><li><a href="/">Início</a></li><li><a href="/sobre">Sobre nós</a></li>
<li><a href="/contato">Contato</a></li></ul></nav></header>
<main><article>
<h1>{heading}</h1>
{body}
</article></main>
<aside><p><a href="/newsletter">Assine a nossa newsletter</a></p></aside>
<footer><p>© 2024 Portal Geografia. Todos os direitos reservados.</p>
<a href="/privacidade">Política de privacidade</a></footer>
</body></html>"""


AMAZONAS = page(
    "O rio Amazonas | Portal Geografia", "O rio Amazonas",
    ["O rio Amazonas nasce nos Andes peruanos e atravessa o Brasil de oeste para leste. "
     "É o rio mais caudaloso do mundo",
     "O rio deságua no oceano Atlântico, perto da cidade de Belém. A sua bacia cobre cerca de "
     "sete milhões de quilómetros quadrados.",
     "Nas suas águas vivem o boto-cor-de-rosa, o pirarucu e centenas de outras espécies de "
     "peixes."],
    head_extra=f'<link rel="canonical" href="{CANONICAL}">'
               '<meta property="og:url" content="https://geografia.example.pt/og/outro">')

TEJO = page(
    "O rio Tejo", "O rio Tejo",
    ["O rio Tejo nasce na serra de Albarracín, em Espanha, e desagua em Lisboa. É o rio mais "
     "longo da Península Ibérica.",
     "Ao longo do seu curso passa por Toledo, Abrantes e Santarém, e forma um grande estuário "
     "junto à capital portuguesa."],
    head_extra='<link rel="canonical" href="/relativo/tejo">'
               '<meta property="og:url" content="https://rios.example.pt/tejo">')

NO_TEXT = """<!DOCTYPE html><html lang="pt"><head><meta charset="utf-8"><title>Galeria</title>
</head><body><script>var galeria = [1, 2, 3];</script><img src="foto1.png"><img src="foto2.png">
</body></html>"""


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def read(*inputs, **options) -> list[Document | CorpusProblem]:
    return list(read_corpus(inputs, CorpusOptions(**options)))


def split(items):
    docs = [i for i in items if isinstance(i, Document)]
    problems = [i for i in items if isinstance(i, CorpusProblem)]
    return docs, problems


# -- WARC writing -----------------------------------------------------------------------------
def http_response(body: bytes, content_type: str = "text/html; charset=utf-8", *,
                  status: str = "200 OK", extra: bytes = b"") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n".encode() + extra
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def warc_record(record_type: WarcRecordType, payload: bytes, content_type: str,
                uri: str | None = None) -> bytes:
    """One record's bytes, written by FastWARC."""
    record = WarcRecord()
    record.init_headers(record_type)
    if uri:
        record.headers["WARC-Target-URI"] = uri
    record.headers["Content-Type"] = content_type
    record.set_bytes_content(payload)
    out = io.BytesIO()
    record.write(out)
    return out.getvalue()


HTTP_RESPONSE = "application/http; msgtype=response"
PNG = b"\x89PNG\r\n\x1a\n" + zlib.compress(bytes(range(256)) * 8)


def crawl_records() -> list[bytes]:
    """warcinfo, request, HTML response, image response, empty HTML response, redirect, HTML."""
    return [
        warc_record(WarcRecordType.warcinfo, b"software: ptoie-tests\r\nformat: WARC 1.1\r\n",
                    "application/warc-fields"),
        warc_record(WarcRecordType.request,
                    b"GET /artigos/rio-amazonas HTTP/1.1\r\nHost: geografia.example.pt\r\n\r\n",
                    "application/http; msgtype=request", CANONICAL),
        warc_record(WarcRecordType.response, http_response(AMAZONAS.encode()), HTTP_RESPONSE,
                    CANONICAL),
        warc_record(WarcRecordType.response, http_response(PNG, "image/png"), HTTP_RESPONSE,
                    "https://geografia.example.pt/img/rio.png"),
        warc_record(WarcRecordType.response, http_response(b""), HTTP_RESPONSE,
                    "https://geografia.example.pt/vazio"),
        warc_record(WarcRecordType.response,
                    http_response(b"<html><body><p>Moved Permanently</p></body></html>",
                                  status="301 Moved Permanently",
                                  extra=b"Location: https://rios.example.pt/tejo\r\n"),
                    HTTP_RESPONSE, "http://rios.example.pt/tejo"),
        warc_record(WarcRecordType.response, http_response(TEJO.encode("utf-8")), HTTP_RESPONSE,
                    "https://rios.example.pt/tejo"),
    ]


def write_warc(path: Path, records: list[bytes]) -> Path:
    """Plain WARC, or gzip per record when the name ends in .gz."""
    if path.name.endswith(".gz"):
        return write(path, b"".join(gzip.compress(r) for r in records))
    return write(path, b"".join(records))


# -- file kinds and the Document record -------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("a.html", ("html", False)), ("a.HTM", ("html", False)), ("a.html.gz", ("html", True)),
    ("a.warc", ("warc", False)), ("a.warc.gz", ("warc", True)),
    ("CC-MAIN-20240101.crawl.00001.warc.gz", ("warc", True)), ("a.arc.gz", (None, True)),
])
def test_file_kinds(name, expected):
    assert file_kind(Path(name)) == expected


def test_document_keeps_three_positional_fields_and_stays_frozen():
    doc = Document("id", "texto", "a.txt")
    assert (doc.url, doc.title) == (None, None)
    web = Document("id", "texto", "a.html", "https://x.example.pt/", "Título")
    assert (web.url, web.title) == ("https://x.example.pt/", "Título")
    with pytest.raises(dataclasses.FrozenInstanceError):
        web.title = "outro"  # type: ignore[misc]
    assert not hasattr(web, "__dict__")


# -- HTML files -------------------------------------------------------------------------------
def test_html_page_main_text_title_and_canonical_id(tmp_path):
    path = write(tmp_path / "web" / "amazonas.html", AMAZONAS)
    [doc] = read(tmp_path / "web")
    assert doc == Document(doc_id=CANONICAL, text=doc.text, source=str(path), url=CANONICAL,
                           title="O rio Amazonas")
    assert "nasce nos Andes peruanos" in doc.text
    assert "centenas de outras espécies de peixes." in doc.text
    for boilerplate in BOILERPLATE:
        assert boilerplate not in doc.text
    # one paragraph per block, blank lines between: the heading and the paragraph without a
    # final period stay sentences of their own
    assert "mundo\n\nO rio deságua" in doc.text
    assert split_sentences(doc.text).sentences[:4] == [
        "O rio Amazonas",
        "O rio Amazonas nasce nos Andes peruanos e atravessa o Brasil de oeste para leste.",
        "É o rio mais caudaloso do mundo",
        "O rio deságua no oceano Atlântico, perto da cidade de Belém.",
    ]


def test_html_without_absolute_canonical_uses_the_relative_path(tmp_path):
    path = write(tmp_path / "sub" / "tejo.htm.gz", gzip.compress(TEJO.encode()))
    [doc] = read(tmp_path)
    assert doc.doc_id == "sub/tejo.htm.gz"  # a relative canonical is no id
    assert doc.url == "https://rios.example.pt/tejo"  # og:url, as trafilatura reads it
    assert doc.title == "O rio Tejo"
    assert doc.source == str(path)
    assert "desagua em Lisboa" in doc.text and "Início" not in doc.text


def test_html_in_a_declared_legacy_encoding(tmp_path):
    html = page("Informação", "A nação e o coração",
                ["A informação sobre a nação portuguesa chegou ao coração da Europa. "
                 "Os navegadores partiram de Lisboa no século XV."] * 2, charset="windows-1252")
    write(tmp_path / "latin.html", html.encode("cp1252"))
    [doc] = read(tmp_path)
    assert "A informação sobre a nação portuguesa" in doc.text


def test_html_without_main_text_is_a_problem_and_reading_goes_on(tmp_path):
    empty = write(tmp_path / "a_galeria.html", NO_TEXT)
    write(tmp_path / "b_amazonas.html", AMAZONAS)
    write(tmp_path / "c_binario.html", b"\x00\x01\x02\xff\xfe" * 50)
    write(tmp_path / "d_nul.html", b"<html><body><p>Ol\xe1 \x00 mundo.</p></body></html>")
    items = read(tmp_path)
    assert [type(i).__name__ for i in items] == ["CorpusProblem", "Document", "CorpusProblem",
                                                 "CorpusProblem"]
    problem = items[0]
    assert (problem.source, problem.kind, problem.scope) == (str(empty), "empty", "document")
    assert "without main text" in problem.message and str(empty) in str(problem)
    assert items[1].doc_id == CANONICAL
    assert items[2].source == str(tmp_path / "c_binario.html")
    assert items[2].kind == "undecodable" and "convert it to UTF-8" in items[2].message
    assert (items[3].source, items[3].kind) == (str(tmp_path / "d_nul.html"), "undecodable")


def test_html_over_the_size_limit(tmp_path):
    write(tmp_path / "a.html", AMAZONAS)
    [problem] = read(tmp_path, max_document_bytes=1000)
    assert problem.kind == "too_large" and "--max-document-bytes" in problem.message


# -- WARC files -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["crawl.warc", "crawl.warc.gz"])
def test_warc_html_responses_become_documents(tmp_path, name):
    path = write_warc(tmp_path / name, crawl_records())
    docs, problems = split(read(path))
    assert [(d.doc_id, d.url, d.title, d.source) for d in docs] == [
        (CANONICAL, CANONICAL, "O rio Amazonas", f"{path}:3"),
        ("https://rios.example.pt/tejo", "https://rios.example.pt/tejo", "O rio Tejo",
         f"{path}:7"),
    ]
    assert "nasce nos Andes peruanos" in docs[0].text
    assert "desagua em Lisboa" in docs[1].text
    for doc in docs:
        for boilerplate in BOILERPLATE:
            assert boilerplate not in doc.text
    # warcinfo, request, the image and the redirect are no problems; the empty page is one
    assert [(p.source, p.kind, p.scope) for p in problems] == [(f"{path}:5", "empty", "document")]


def test_whole_file_gzip_warc(tmp_path):
    path = write(tmp_path / "crawl.warc.gz", gzip.compress(b"".join(crawl_records())))
    docs, problems = split(read(path))
    assert [d.doc_id for d in docs] == [CANONICAL, "https://rios.example.pt/tejo"]
    assert [p.source for p in problems] == [f"{path}:5"]


def test_raw_warc_1_0_with_chunked_gzip_body_and_lf_headers(tmp_path):
    """Hand-written WARC/1.0 as older crawlers stored it: HTTP headers ended by bare LF, the body
    chunked and gzip-encoded as the server sent it."""
    def record(warc_type: str, uri: str, block: bytes, content_type: str) -> bytes:
        return (f"WARC/1.0\r\nWARC-Type: {warc_type}\r\nWARC-Target-URI: {uri}\r\n"
                f"WARC-Date: 2024-05-01T10:00:00Z\r\n"
                f"WARC-Record-ID: <urn:uuid:{abs(hash(uri + warc_type)):032x}>\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(block)}\r\n\r\n"
                ).encode() + block + b"\r\n\r\n"

    gz = gzip.compress(AMAZONAS.encode())
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(gz[i:i + 100]), gz[i:i + 100])
                       for i in range(0, len(gz), 100)) + b"0\r\n\r\n"
    block = (b"HTTP/1.1 200 OK\nContent-Type: text/html; charset=UTF-8\nContent-Encoding: gzip\n"
             b"Transfer-Encoding: chunked\n\n" + chunked)
    latin = TEJO.replace('charset="utf-8"', 'charset="iso-8859-1"').encode("latin-1")
    path = write(tmp_path / "old.warc", record("response", CANONICAL, block, HTTP_RESPONSE)
                 + record("response", "https://rios.example.pt/tejo",
                          http_response(latin, "text/html; charset=ISO-8859-1"), HTTP_RESPONSE))
    docs, problems = split(read(path))
    assert problems == []
    assert [d.doc_id for d in docs] == [CANONICAL, "https://rios.example.pt/tejo"]
    assert "deságua no oceano Atlântico" in docs[0].text
    assert "Península Ibérica" in docs[1].text


def test_warc_undecodable_payloads_are_problems_of_their_record(tmp_path):
    records = [
        warc_record(WarcRecordType.response,
                    http_response(b"\x1f\x8b\x08\x00not really gzip",
                                  extra=b"Content-Encoding: gzip\r\n"),
                    HTTP_RESPONSE, "https://a.example.pt/gz"),
        warc_record(WarcRecordType.response,
                    http_response(bytes((i * 7919) % 251 + 1 for i in range(4000)),
                                  "text/html"),
                    HTTP_RESPONSE, "https://a.example.pt/lixo"),
        warc_record(WarcRecordType.response, http_response(TEJO.encode()), HTTP_RESPONSE,
                    "https://rios.example.pt/tejo"),
    ]
    path = write_warc(tmp_path / "bad.warc.gz", records)
    docs, problems = split(read(path))
    assert [(p.source, p.kind) for p in problems] == [(f"{path}:1", "undecodable"),
                                                      (f"{path}:2", "undecodable")]
    assert "Content-Encoding" not in problems[1].message
    assert [d.source for d in docs] == [f"{path}:3"]


def brotli(data: bytes) -> bytes:
    """``data`` Brotli-compressed by FastWARC's writer."""
    out = io.BytesIO()
    writer = BrotliWriter(out)
    writer.write(data)
    writer.close()  # flushes the last block; the BytesIO stays open
    return out.getvalue()


def chunked(data: bytes, size: int = 100) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size])
                    for i in range(0, len(data), size)) + b"0\r\n\r\n"


@pytest.mark.parametrize("encoding, body, extra", [
    ("gzip", lambda page: gzip.compress(page), b"Content-Encoding: gzip\r\n"),
    ("deflate (zlib)", lambda page: zlib.compress(page), b"Content-Encoding: deflate\r\n"),
    ("deflate (raw)", lambda page: zlib.compress(page)[2:-4], b"Content-Encoding: deflate\r\n"),
    ("br", lambda page: brotli(page), b"Content-Encoding: br\r\n"),
    ("chunked", lambda page: chunked(page), b"Transfer-Encoding: chunked\r\n"),
    ("chunked gzip", lambda page: chunked(gzip.compress(page)),
     b"Transfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n"),
])
def test_http_encodings_are_undone(tmp_path, encoding, body, extra):
    record = warc_record(WarcRecordType.response, http_response(body(TEJO.encode()), extra=extra),
                         HTTP_RESPONSE, "https://rios.example.pt/tejo")
    path = write_warc(tmp_path / "enc.warc", [record])
    docs, problems = split(read(path))
    assert problems == [] and [d.source for d in docs] == [f"{path}:1"]
    assert "Península Ibérica" in docs[0].text


@pytest.mark.parametrize("encoding, body, extra", [
    ("gzip cut short", lambda page: gzip.compress(page)[:-20], b"Content-Encoding: gzip\r\n"),
    ("chunk cut short", lambda page: chunked(page)[:250], b"Transfer-Encoding: chunked\r\n"),
    ("br garbage", lambda page: b"not brotli at all" * 4, b"Content-Encoding: br\r\n"),
    ("chunk lines ended by LF", lambda page: chunked(page).replace(b"\r\n", b"\n"),
     b"Transfer-Encoding: chunked\r\n"),
    ("unknown", lambda page: page, b"Content-Encoding: compress\r\n"),
])
def test_a_body_that_cannot_be_decoded_is_a_problem_of_its_record(tmp_path, encoding, body, extra):
    records = [warc_record(WarcRecordType.response, http_response(body(AMAZONAS.encode()), extra=extra),
                           HTTP_RESPONSE, CANONICAL),
               warc_record(WarcRecordType.response, http_response(TEJO.encode()), HTTP_RESPONSE,
                           "https://rios.example.pt/tejo")]
    path = write_warc(tmp_path / "enc.warc", records)
    docs, problems = split(read(path))
    assert [(p.source, p.kind, p.scope) for p in problems] == [(f"{path}:1", "undecodable", "document")]
    assert [d.source for d in docs] == [f"{path}:2"]


@pytest.mark.parametrize("where", ["payload", "warc header", "http header"])
def test_truncated_warc_names_the_record_and_the_next_file_is_read(tmp_path, where):
    data = b"".join(crawl_records())
    third = data.index(b"WARC-Type: response")  # record 3, the Amazonas page
    cut = {"payload": data.index("deságua".encode()),
           "warc header": data.index(b"WARC-Target-URI", third),
           "http header": data.index(b"Content-Type: text/html", third)}[where]
    truncated = write(tmp_path / "a_cortado.warc", data[:cut])
    write(tmp_path / "b_depois.txt", "O rio Douro nasce em Espanha.")
    items = read(tmp_path)
    docs, problems = split(items)
    assert [(p.source, p.kind) for p in problems] == [(f"{truncated}:3", "bad_record")]
    assert "truncated WARC record" in problems[0].message
    assert [d.doc_id for d in docs] == ["b_depois.txt"]


def test_gzipped_warc_without_gz_suffix_and_bodies_stored_decoded(tmp_path):
    """Compression is told by content; a body stored decoded with its Content-Encoding and
    Transfer-Encoding headers kept (some crawlers do) is read as it is."""
    records = [
        warc_record(WarcRecordType.response,
                    http_response(TEJO.encode(), extra=b"Content-Encoding: gzip\r\n"
                                                       b"Transfer-Encoding: chunked\r\n"),
                    HTTP_RESPONSE, "https://rios.example.pt/tejo"),
        warc_record(WarcRecordType.response,
                    http_response(AMAZONAS.encode(), status="404 Not Found"), HTTP_RESPONSE,
                    "https://geografia.example.pt/nao-existe"),
    ]
    path = write(tmp_path / "crawl.warc", gzip.compress(b"".join(records)))
    items = read(path)
    assert [(type(i).__name__, i.source) for i in items] == [("Document", f"{path}:1")]
    assert "Península Ibérica" in items[0].text


def test_truncated_warc_gz_ends_the_file_with_one_problem(tmp_path):
    records = crawl_records()
    good = b"".join(gzip.compress(r) for r in records[:3])
    fourth = gzip.compress(records[3])
    truncated = write(tmp_path / "a_cortado.warc.gz", good + fourth[: len(fourth) // 2])
    write(tmp_path / "b_depois.warc", b"".join(records[6:]))
    items = read(tmp_path)
    docs, problems = split(items)
    assert [d.source for d in docs] == [f"{truncated}:3", f"{tmp_path / 'b_depois.warc'}:1"]
    assert [(p.source, p.kind, p.scope) for p in problems] == [(f"{truncated}:4", "unreadable",
                                                                "file")]
    assert "truncated gzip" in problems[0].message and "after record 3" in problems[0].message
    assert items.index(problems[0]) < items.index(docs[1])  # the problem comes before the next file


def test_warc_that_turns_into_garbage_midway(tmp_path):
    records = crawl_records()
    broken = write(tmp_path / "broken.warc", b"".join(records[:3]) + b"isto nao e WARC\r\n" * 20
                   + b"".join(records[3:]))
    junk = write(tmp_path / "junk.warc", b"<html>nem sequer WARC</html>\n" * 10)
    empty = write(tmp_path / "zero.warc.gz", b"")
    items = read(broken, junk, empty)
    docs, problems = split(items)
    assert [d.source for d in docs] == [f"{broken}:3"]
    assert [(p.source, p.kind, p.scope) for p in problems] == [
        (f"{broken}:4", "bad_file", "file"), (f"{junk}:1", "bad_file", "file"),
        (str(empty), "empty", "file")]
    assert "not valid WARC after record 3" in problems[0].message
    assert "at its start" in problems[1].message


# -- a mixed directory ------------------------------------------------------------------------
def test_read_corpus_over_a_mixed_directory(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write(tmp_path / "a.txt", "O Porto fica no norte de Portugal.")
    write(tmp_path / "b.jsonl", json.dumps({"id": "j1", "text": "Coimbra tem uma universidade."})
          + "\n")
    write(tmp_path / "c" / "amazonas.html", AMAZONAS)
    write(tmp_path / "c" / "galeria.htm", NO_TEXT)
    warc = write_warc(tmp_path / "d" / "crawl.warc.gz", crawl_records())
    pq.write_table(pa.table({"id": ["p1"], "text": ["Braga é uma cidade antiga."]}),
                   tmp_path / "e.parquet")
    write(tmp_path / "f.pdf", b"%PDF-1.4 ignorado")
    items = read(tmp_path)
    summary = [(type(i).__name__, i.doc_id if isinstance(i, Document) else i.kind) for i in items]
    assert summary == [  # files of a folder first, then its subfolders, each in sorted order
        ("Document", "a.txt"), ("Document", "j1"), ("Document", "p1"),
        ("Document", CANONICAL), ("CorpusProblem", "empty"),  # c/amazonas.html, c/galeria.htm
        ("Document", CANONICAL), ("CorpusProblem", "empty"),  # d/crawl.warc.gz
        ("Document", "https://rios.example.pt/tejo"),
    ]
    plain = [i for i in items if isinstance(i, Document) and i.doc_id in ("a.txt", "j1", "p1")]
    assert all(d.url is None and d.title is None for d in plain)
    assert items[4].source == str(tmp_path / "c" / "galeria.htm")
    assert items[6].source == f"{warc}:5"
