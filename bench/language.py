"""The job's language filter (``ptoie.text.language.LanguageFilter``, py3langid) on short documents:
speed, and how often it refuses Portuguese or accepts English (a script, not a test).

    .venv/bin/python bench/language.py

Portuguese documents: the gold sentences of ``bench/splitter.py`` (PUD-100 and TransAlign), one
per document, and five per document. English documents: sentences of 40-250 characters from the
prose of Python's own help topics (``pydoc_data.topics``, shipped with Python), one per document.
(No Spanish text ships offline here; ``tests/test_batch.py`` checks a Spanish document.)
Printed per set: documents, share refused (``pt`` accepted), and microseconds per document.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pydoc_data.topics

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.splitter import gold_sentences  # noqa: E402
from ptoie.text.language import LanguageFilter  # noqa: E402


def english_sentences() -> list[str]:
    found: dict[str, None] = {}
    for text in pydoc_data.topics.topics.values():
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(text.split())):
            if (40 < len(sentence) < 250 and re.match(r"[A-Z][a-z]+ [a-z]", sentence)
                    and not re.search(r"[()=\[\]{}_*`]", sentence)):
                found.setdefault(sentence)
    return list(found)


def main() -> None:
    language = LanguageFilter(["pt"])
    language.refuse("Aquecimento do modelo, carregado uma vez.")
    portuguese = gold_sentences()
    sets = {"pt, 1 sentence": portuguese,
            "pt, 5 sentences": [" ".join(portuguese[i:i + 5]) for i in range(0, len(portuguese), 5)],
            "en, 1 sentence": english_sentences()}
    for name, documents in sets.items():
        start = time.perf_counter()
        refused = [doc for doc in documents if language.refuse(doc) is not None]
        seconds = time.perf_counter() - start
        print(f"{name:<16} {len(documents):>5} documents: {len(refused) / len(documents):7.2%} "
              f"refused, {1e6 * seconds / len(documents):6.0f} µs per document")
        for doc in refused[:3] if name.startswith("pt") else []:
            print(f"    refused: {doc[:100]!r} -> {language.guess(doc)}")


if __name__ == "__main__":
    main()
