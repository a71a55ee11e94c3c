"""Corpus: files and folders of documents -> :class:`Document` records, bad input -> problems.

* ``documents``  the records: ``Document``, ``CorpusProblem``, ``CorpusOptions`` (limits)
* ``readers``    the walk and ``read_corpus``; .txt, .jsonl, .parquet, gzip
* ``web``        .html (trafilatura) and .warc (FastWARC)
"""

from ptoie.corpus.documents import CorpusOptions, CorpusProblem, Document, ProblemKind
from ptoie.corpus.readers import READ_TYPES, FileKind, file_kind, read_corpus

__all__ = ["READ_TYPES", "CorpusOptions", "CorpusProblem", "Document", "FileKind", "ProblemKind",
           "file_kind", "read_corpus"]
