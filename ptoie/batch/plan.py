"""Planning: corpus -> documents split into sentences -> deterministic batches of work.

Batch boundaries depend only on the corpus order and ``batch_sentences``, so a resumed run decodes
exactly the batches an uninterrupted run decodes (continuous batching makes a sentence's output
depend on which sentences share its decode).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ptoie.corpus import CorpusProblem, Document, read_corpus
from ptoie.text.language import LanguageFilter
from ptoie.text.sentences import split_sentences
from ptoie.batch.config import BatchConfig

# -- work units -------------------------------------------------------------------------------
@dataclass(slots=True)
class PreparedDocument:
    """A document split into sentences, ready to be batched."""

    doc_id: str
    source: str
    sha256: str
    sentences: list[str]
    too_long: list[str]
    url: str | None = None
    """The page URL of a web document (provenance in every output)."""
    title: str | None = None

    def task(self) -> DocumentTask:
        return DocumentTask(self.doc_id, self.sentences, self.url, self.title)


@dataclass(frozen=True, slots=True)
class DocumentTask:
    """What a worker gets for one document."""

    doc_id: str
    sentences: list[str]
    url: str | None = None
    title: str | None = None


# -- corpus -> documents -> batches -----------------------------------------------------------
def prepare_documents(config: BatchConfig, on_problem: Callable[[CorpusProblem], None],
                      on_ignored: Callable[[Path], None] | None = None
                      ) -> Iterator[PreparedDocument]:
    """The corpus' documents (up to ``config.limit``), split into sentences; problems go to
    ``on_problem``: bad input, duplicate ids, documents in a language not in
    ``config.languages``. Files of types not read go to ``on_ignored``."""
    seen: set[str] = set()
    language = LanguageFilter(config.languages) if config.languages is not None else None
    for item in read_corpus(config.inputs, config.corpus_options(), on_ignored=on_ignored):
        if isinstance(item, CorpusProblem):
            on_problem(item)
            continue
        if config.limit is not None and len(seen) >= config.limit:
            return
        if item.doc_id in seen:
            on_problem(CorpusProblem(item.source, "bad_record",
                                     f"duplicate document id {item.doc_id!r}; ids must be unique "
                                     f"(fix the {config.id_field!r} field)"))
            continue
        seen.add(item.doc_id)
        refused = language.refuse(item.text) if language is not None else None
        if refused is not None:
            accepted = ",".join(sorted(language.languages))  # type: ignore[union-attr]
            on_problem(CorpusProblem(
                item.source, "language",
                f"not in --languages {accepted}: the text reads as {refused.language!r} "
                f"(probability {refused.probability:.2f}); pass --languages "
                f"{accepted},{refused.language} or --languages any to extract it"))
            continue
        yield _prepare(item, config)


def _prepare(doc: Document, config: BatchConfig) -> PreparedDocument:
    split = split_sentences(doc.text, max_chars=config.max_sentence_chars,
                            long_sentences=config.long_sentences)
    return PreparedDocument(doc_id=doc.doc_id, source=doc.source,
                            sha256=hashlib.sha256(doc.text.encode("utf-8")).hexdigest(),
                            sentences=split.sentences, too_long=split.too_long,
                            url=doc.url, title=doc.title)


def group_batches(documents: Iterable[PreparedDocument], batch_sentences: int
                  ) -> Iterator[list[PreparedDocument]]:
    """Consecutive documents, closed into a batch once it holds ``batch_sentences`` sentences:
    a function of the corpus order only (see the module doc)."""
    batch: list[PreparedDocument] = []
    n_sentences = 0
    for doc in documents:
        if not doc.sentences:
            continue
        batch.append(doc)
        n_sentences += len(doc.sentences)
        if n_sentences >= batch_sentences:
            yield batch
            batch, n_sentences = [], 0
    if batch:
        yield batch
