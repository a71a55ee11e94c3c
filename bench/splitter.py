"""The sentence splitter against maintained ones, on gold sentences joined into paragraphs (a
script, not a test).

    .venv/bin/python bench/splitter.py [--per-paragraph 5]

Gold: PUD-100's 100 sentences and the sentences of the TransAlign CoNLL files (tokens joined, the
space before closing punctuation and after opening brackets removed), deduplicated, in file
order; every ``--per-paragraph`` consecutive ones joined by a space into one paragraph. A
splitter is right on a gold sentence when it returns exactly that sentence (whitespace
normalised). Printed per splitter: gold sentences returned exactly, and paragraphs split exactly
right. Splitters: ``ptoie.text.sentences.split_paragraph`` (the job's), ``simplemma.split_sentences(
lang="pt")`` and ``sentencex.segment("pt", ...)``, each when installed.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throughput import DATA_DIRS, TRANSALIGN_FILES  # noqa: E402
from ptoie.training.conll import read_conll  # noqa: E402
from ptoie.evaluation import load_benchmark  # noqa: E402
from ptoie.text.sentences import split_paragraph  # noqa: E402

_SPACES = re.compile(r"\s+")


def detokenize(tokens: list[str]) -> str:
    text = " ".join(tokens)
    text = re.sub(r" ([.,;:!?)\]}%»”])", r"\1", text)
    return re.sub(r"([(\[{«“]) ", r"\1", text)


def gold_sentences() -> list[str]:
    seen: dict[str, None] = {}
    for sentence in load_benchmark("pud100").sentences:
        seen.setdefault(_SPACES.sub(" ", sentence.text).strip())
    folder = next((d / "transalign" for d in DATA_DIRS if (d / "transalign").is_dir()), None)
    for name in TRANSALIGN_FILES if folder else ():
        if (folder / name).is_file():
            for tagged in read_conll(folder / name).sentences:
                seen.setdefault(detokenize(tagged.tokens))
    return [s for s in seen if s]


def splitters() -> dict[str, Callable[[str], list[str]]]:
    found: dict[str, Callable[[str], list[str]]] = {"ptoie": split_paragraph}
    try:
        import simplemma
        found["simplemma"] = lambda text: simplemma.split_sentences(text, lang="pt")
    except ImportError:
        pass
    try:
        import sentencex
        found["sentencex"] = lambda text: list(sentencex.segment("pt", text))
    except ImportError:
        pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-paragraph", type=int, default=5)
    args = parser.parse_args()
    gold = gold_sentences()
    paragraphs = [gold[i:i + args.per_paragraph] for i in range(0, len(gold), args.per_paragraph)]
    print(f"{len(gold)} gold sentences in {len(paragraphs)} paragraphs of {args.per_paragraph}")
    for name, split in splitters().items():
        right = exact = 0
        start = time.perf_counter()
        for paragraph in paragraphs:
            got = [_SPACES.sub(" ", s).strip() for s in split(" ".join(paragraph))]
            got = [s for s in got if s]
            right += sum(1 for s in paragraph if s in set(got))
            exact += got == paragraph
        seconds = time.perf_counter() - start
        print(f"{name:<10} sentences right {right}/{len(gold)} ({right / len(gold):.2%}), "
              f"paragraphs right {exact}/{len(paragraphs)} ({exact / len(paragraphs):.2%}), "
              f"{seconds:.2f} s")


if __name__ == "__main__":
    main()
