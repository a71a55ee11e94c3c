"""RDF fragments: the cache of serialised statements that every RDF output is made of.

The rows of the Parquet sources, in order, are cut into fragments of at most ``FRAGMENT_ROWS``
rows (several small files in one, a large file over several; at most ``FRAGMENT_SOURCES`` files in
one). Each is serialised from Parquet row batches into the cache folder and named after its
sources' paths, sizes, modification times and row ranges, the confidence threshold, whether
mentions are resolved (:mod:`ptoie.graph.mentions`) and :data:`GRAPH_FORMAT`: sources that did
not change are never serialised again. One more fragment holds the ``rdfs:label`` statements of
the whole graph (:mod:`ptoie.graph.labels`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ptoie.files import atomic_path
from ptoie.graph import canonical, mention_pass, mentions, networkx_io, rdf
from ptoie.graph.labels import write_labels
from ptoie.graph.mentions import Key as MentionKey, Mention
from ptoie.graph.rdf import RdfFormatName, RdfVocabulary, rdf_extension, write_rdf
from ptoie.graph.sources import TripleReader, confident_rows, count_rows

FRAGMENT_SOURCES = 256
"""At most this many Parquet sources per RDF fragment (see :func:`plan_fragments`)."""
FRAGMENT_ROWS = 20_000
"""At most this many rows (triples) per RDF fragment: what the store bulk-loads at once. Oxigraph's
bulk loader holds a fragment's statements in memory (25,000 rows: 400 MB): ``ptoie-kg`` on
1,000,000 synthetic triples in one file peaked at 855 MB with 20,000 rows, 1,001 MB with 25,000,
in the same time (159 s, 164 s; ``bench/scale.py kg --layouts 1``, 2026-12-04)."""
GRAPH_FORMAT = hashlib.sha256(b"".join(
    Path(module.__file__).read_bytes()
    for module in (canonical, mentions, mention_pass, rdf, networkx_io))).hexdigest()[:12]
"""Part of every fragment's key: the digest of the code that writes the statements and graphs
(``ptoie.graph.canonical``, ``ptoie.graph.mentions``, ``mention_pass``, ``ptoie.graph.rdf``,
``ptoie.graph.networkx_io``), so caches and stores made by other code are rebuilt."""
LABELS_KEY = "labels|"
"""The start of the labels fragment's key (the store replaces the labels it holds)."""


@dataclass(frozen=True, slots=True)
class Piece:
    """Rows ``start`` to ``stop`` (exclusive) of one Parquet source."""

    path: Path
    start: int
    stop: int


@dataclass(frozen=True, slots=True)
class Fragment:
    """One RDF fragment of the cache: the file, its pieces of Parquet sources and their keys."""

    path: Path
    pieces: Sequence[Piece]
    keys: tuple[str, ...]
    """``path|size|mtime|min_confidence|GRAPH_FORMAT`` of each piece's source (then ``|mentions``
    when mentions are resolved, ``|rows=start-stop`` when the piece is not the whole file): what
    the store records as loaded."""


def plan_fragments(sources: Sequence[Path], cache: Path, fmt: RdfFormatName,
                   min_confidence: float | None = None,
                   resolve_mentions: bool = False) -> list[Fragment]:
    """The sources' rows in order, cut into fragments of at most ``FRAGMENT_ROWS`` rows and
    ``FRAGMENT_SOURCES`` sources, each with the path of its RDF fragment.

    The batch job writes many small shards (about 40 rows each), and a file per shard would cost
    more in opens and fsyncs than in serialisation; a user's table may be one file of millions of
    rows, which the store could not bulk-load at once. A fragment is named after its pieces' keys;
    a job's new shards sort after its old ones, so a run that adds shards remakes only the last
    fragment and the new ones. A key also holds the confidence threshold, whether mentions are
    resolved and :data:`GRAPH_FORMAT`: another threshold or setting, or other code, is another
    fragment. (A mention is resolved from its document's triples; a document whose triples lie
    in several sources is resolved as a whole, but a fragment is rewritten only when its own
    sources change.)"""
    groups: list[list[tuple[Piece, str]]] = [[]]
    rows = 0
    for path in sources:
        stat = path.stat()
        key = (f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{min_confidence}"
               f"|{GRAPH_FORMAT}{'|mentions' if resolve_mentions else ''}")
        total = count_rows(path)
        start = 0
        while True:
            if groups[-1] and (rows >= FRAGMENT_ROWS or len(groups[-1]) >= FRAGMENT_SOURCES):
                groups.append([])
                rows = 0
            stop = min(total, start + FRAGMENT_ROWS - rows)
            whole = start == 0 and stop == total
            groups[-1].append((Piece(path, start, stop),
                               key if whole else f"{key}|rows={start}-{stop}"))
            rows += stop - start
            start = stop
            if start >= total:
                break
    return [_fragment(cache, index, group, rdf_extension(fmt))
            for index, group in enumerate(g for g in groups if g)]


def _fragment(cache: Path, index: int, group: list[tuple[Piece, str]], extension: str
              ) -> Fragment:
    """The fragment of a group of keyed pieces, named after its position and its keys."""
    keys = tuple(key for _, key in group)
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:20]
    return Fragment(cache / f"fragment-{index:06d}-{digest}{extension}",
                    [piece for piece, _ in group], keys)


def write_fragment(fragment: Fragment, fmt: RdfFormatName, vocabulary: RdfVocabulary,
                   reader: TripleReader, min_confidence: float | None,
                   found: Mapping[MentionKey, Mention] | None = None) -> tuple[int, int]:
    """Serialise the triples of the fragment's pieces at or above ``min_confidence`` to its file
    (atomically), a row batch at a time, a subject in ``found`` as the entity it refers to;
    returns the rows written and the rows read."""
    written = read = 0

    def tables() -> Iterator[pa.Table]:
        nonlocal written, read
        for piece in fragment.pieces:
            for table in reader.read(piece.path, piece.start, piece.stop):
                read += table.num_rows
                table = confident_rows(table, min_confidence)
                written += table.num_rows
                yield table

    with atomic_path(fragment.path) as tmp, open(tmp, "wb") as out:
        write_rdf(tables(), out, fmt, vocabulary, found)
    return written, read


def labels_fragment(sources: Sequence[Path], cache: Path, fmt: RdfFormatName,
                    vocabulary: RdfVocabulary, min_confidence: float | None,
                    found: Callable[[], Mapping[MentionKey, Mention] | None], *,
                    reuse: str | None) -> Fragment:
    """The fragment of ``rdfs:label`` statements (:func:`ptoie.graph.labels.write_labels`): one
    per entity and relation, its most frequent surface form in all the sources. Named after its
    content, keyed :data:`LABELS_KEY` + name for the store. ``reuse``: the name of the previous
    labels fragment, used as it is when it exists (the caller knows that the sources did not
    change). ``found()``: the mentions resolved, asked for only when the labels are written."""
    if reuse is not None and (cache / reuse).exists():
        return Fragment(cache / reuse, (), (LABELS_KEY + reuse,))
    extension = rdf_extension(fmt)
    draft = cache / f"labels-draft{extension}"
    with atomic_path(draft) as tmp, open(tmp, "wb") as out:
        digest = write_labels(sources, out, fmt, vocabulary, min_confidence, found())
    path = cache / f"fragment-labels-{digest[:20]}{extension}"
    draft.replace(path)
    return Fragment(path, (), (LABELS_KEY + path.name,))


def remove_stale_fragments(cache: Path, fragments: Sequence[Path]) -> None:
    """Delete the fragments of ``cache`` that are not ``fragments``."""
    keep = {f.name for f in fragments}
    for old in cache.glob("fragment-*"):
        if old.name not in keep:
            old.unlink()
