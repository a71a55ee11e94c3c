"""Corpus: files and folders of documents -> :class:`Document` records, bad input -> problems.

* ``readers``  .txt, .jsonl, .parquet, .html (trafilatura), .warc (FastWARC), gzip; limits
"""
