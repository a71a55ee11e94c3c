"""The gold benchmark (PUD-100 format) and the predictions TSV that ``ptoie-eval`` writes and reads.

Gold file (UTF-8, tab separated):

* a sentence line is ``ID<TAB>sentence``;
* each following line, up to the next sentence line, is a candidate extraction
  ``arg1<TAB>rel<TAB>arg2<TAB>c3<TAB>valid<TAB>c5``; it is a gold triple only when ``valid`` (the
  second to last column) is ``1``; ``arg2`` may be empty (a 2-part gold tuple, how Portuguese
  corpora mark an intransitive fact: ``O navio<TAB>afundou<TAB><TAB>...``), ``arg1`` and ``rel`` may
  not;
* blank lines are ignored; any other line shape is an error naming ``file:line``.

Predictions file: header ``sentence<TAB>confidence<TAB>arg1<TAB>rel<TAB>arg2``, then one row per
predicted triple, in the order the system produced them; ``confidence`` is a number or empty.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ptoie.resources import package_data_path
from ptoie.evaluation.matchers import sentence_key

PREDICTIONS_HEADER = ("sentence", "confidence", "arg1", "rel", "arg2")
BUNDLED_BENCHMARKS = {"pud100": "pud100_gold.tsv"}
"""Benchmarks shipped in ``ptoie/data``, by the name ``--bench`` takes."""


class BenchmarkFormatError(ValueError):
    """A gold or predictions file does not have the expected shape (the message names file:line)."""


@dataclass(frozen=True, slots=True)
class GoldTriple:
    """One gold extraction. ``arg2`` is ``""`` for a 2-part tuple (relation and subject only),
    which the matchers score as CaRB scores a tuple with one argument (docs/evaluation.md)."""

    arg1: str
    rel: str
    arg2: str

    @property
    def parts(self) -> tuple[str, str, str]:
        return self.arg1, self.rel, self.arg2

    @property
    def has_arg2(self) -> bool:
        return bool(self.arg2.strip())


@dataclass(slots=True)
class GoldSentence:
    """One benchmark sentence (text exactly as in the file) with its gold triples, possibly none."""

    sentence_id: str
    text: str
    triples: list[GoldTriple] = field(default_factory=list)
    line: int = 0


@dataclass(slots=True)
class Benchmark:
    name: str
    source: str
    sha256: str
    sentences: list[GoldSentence]

    @property
    def n_gold(self) -> int:
        return sum(len(s.triples) for s in self.sentences)

    @property
    def n_sentences_without_gold(self) -> int:
        return sum(1 for s in self.sentences if not s.triples)

    @property
    def n_gold_without_arg2(self) -> int:
        """Gold tuples with an empty arg2 (2-part tuples)."""
        return sum(1 for s in self.sentences for t in s.triples if not t.has_arg2)

    def summary(self) -> dict[str, object]:
        return {"name": self.name, "source": self.source, "sha256": self.sha256,
                "sentences": len(self.sentences), "gold_triples": self.n_gold,
                "gold_triples_without_arg2": self.n_gold_without_arg2,
                "sentences_without_gold": self.n_sentences_without_gold}


@dataclass(frozen=True, slots=True)
class Prediction:
    """One predicted triple of a benchmark sentence."""

    sentence: str
    arg1: str
    rel: str
    arg2: str
    confidence: float | None = None

    @property
    def parts(self) -> tuple[str, str, str]:
        return self.arg1, self.rel, self.arg2


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BenchmarkFormatError(f"{path}:{line}: not UTF-8 text ({exc.reason})") from None


def read_gold_tsv(path: str | os.PathLike[str], *, name: str | None = None) -> Benchmark:
    """Parse a gold TSV (format in the module docstring); errors name ``file:line``."""
    path = Path(path)
    data = path.read_bytes()
    text = _decode(data, path)
    sentences: list[GoldSentence] = []
    first_line_of_key: dict[str, int] = {}
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        cols = line.split("\t")
        where = f"{path}:{lineno}"
        if len(cols) == 2:
            sentence_id, sentence = cols
            if not sentence_id.strip() or not sentence_key(sentence):
                raise BenchmarkFormatError(
                    f"{where}: a sentence line is 'ID<TAB>sentence' with both non-empty, got {line!r}")
            key = sentence_key(sentence)
            if key in first_line_of_key:
                raise BenchmarkFormatError(
                    f"{where}: sentence repeats the one at line {first_line_of_key[key]} (same text "
                    "without spaces and punctuation); merge their triples under one sentence line")
            first_line_of_key[key] = lineno
            sentences.append(GoldSentence(sentence_id.strip(), sentence, line=lineno))
        elif len(cols) == 6:
            if not sentences:
                raise BenchmarkFormatError(f"{where}: candidate triple before the first sentence line")
            valid = cols[4].strip()
            if valid not in ("0", "1"):
                raise BenchmarkFormatError(
                    f"{where}: column 5 of 6 ('valid') must be 0 or 1, got {cols[4]!r}")
            if valid == "1":
                arg1, rel, arg2 = (" ".join(c.split()) for c in cols[:3])
                if not (arg1 and rel):
                    raise BenchmarkFormatError(
                        f"{where}: gold triple (valid=1) with an empty part: arg1 and rel are required "
                        f"(only arg2 may be empty, for a 2-part tuple): {line!r}")
                sentences[-1].triples.append(GoldTriple(arg1, rel, arg2))
        else:
            raise BenchmarkFormatError(
                f"{where}: expected 2 tab-separated columns (ID, sentence) or 6 "
                f"(arg1, rel, arg2, c3, valid, c5), got {len(cols)}")
    if not sentences:
        raise BenchmarkFormatError(f"{path}: no sentence line ('ID<TAB>sentence') found")
    return Benchmark(name=name or path.stem, source=str(path),
                     sha256=hashlib.sha256(data).hexdigest(), sentences=sentences)


def load_benchmark(bench: str | os.PathLike[str]) -> Benchmark:
    """A bundled benchmark by name (``"pud100"``) or the path of a gold TSV."""
    if isinstance(bench, str) and bench in BUNDLED_BENCHMARKS:
        return read_gold_tsv(package_data_path(BUNDLED_BENCHMARKS[bench]), name=bench)
    path = Path(bench)
    if not path.is_file():
        raise FileNotFoundError(
            f"benchmark {str(bench)!r} is neither a bundled name ({', '.join(BUNDLED_BENCHMARKS)}) "
            "nor an existing gold TSV file")
    return read_gold_tsv(path)


def write_gold_tsv(sentences: Iterable[tuple[str, Iterable[tuple[str, str, str]]]],
                   path: str | os.PathLike[str]) -> None:
    """Write ``(sentence, triples)`` pairs as a gold TSV that :func:`read_gold_tsv` (and so
    ``ptoie-eval --bench PATH``) reads: IDs 1..N, every triple a valid candidate. Sentences that
    are equal once spaces and punctuation are removed are merged under the first."""
    merged: dict[str, tuple[str, list[tuple[str, str, str]]]] = {}
    for sentence, triples in sentences:
        entry = merged.setdefault(sentence_key(sentence), (_field(sentence), []))
        entry[1].extend(tuple(_field(p) for p in t[:3]) for t in triples)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for number, (sentence, triples) in enumerate(merged.values(), start=1):
            fh.write(f"{number}\t{sentence}\n")
            for arg1, rel, arg2 in dict.fromkeys(triples):
                fh.write(f"{arg1}\t{rel}\t{arg2}\t1\t1\t0\n")


def _field(text: str) -> str:
    """A TSV field: tabs and line breaks inside a triple part become spaces."""
    return " ".join(text.split())


def _confidence_field(confidence: float | None) -> str:
    return "" if confidence is None else repr(float(confidence))  # repr round-trips exactly


def write_predictions_tsv(predictions: Iterable[Prediction], path: str | os.PathLike[str]) -> None:
    """Write the predictions TSV; the sentence is written exactly as given (it must hold no tab
    or line break), the triple parts with their whitespace collapsed."""
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\t".join(PREDICTIONS_HEADER) + "\n")
        for p in predictions:
            if any(ch in p.sentence for ch in "\t\r\n"):
                raise ValueError(f"sentence holds a tab or line break, cannot write it: {p.sentence!r}")
            row = [p.sentence, _confidence_field(p.confidence), _field(p.arg1), _field(p.rel),
                   _field(p.arg2)]
            fh.write("\t".join(row) + "\n")


def read_predictions_tsv(path: str | os.PathLike[str]) -> list[Prediction]:
    """Read a predictions TSV (format in the module docstring); errors name ``file:line``."""
    path = Path(path)
    predictions: list[Prediction] = []
    lines = _decode(path.read_bytes(), path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise BenchmarkFormatError(f"{path}:1: empty file; the header line "
                                   f"{chr(9).join(PREDICTIONS_HEADER)!r} is required")
    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        cols = line.split("\t")
        where = f"{path}:{lineno}"
        if lineno == 1:
            if tuple(c.strip() for c in cols) != PREDICTIONS_HEADER:
                raise BenchmarkFormatError(
                    f"{where}: the header must be {chr(9).join(PREDICTIONS_HEADER)!r} "
                    f"(tab separated), got {line!r}")
            continue
        if not line.strip():
            continue
        if len(cols) != 5:
            raise BenchmarkFormatError(
                f"{where}: expected 5 tab-separated columns ({', '.join(PREDICTIONS_HEADER)}), "
                f"got {len(cols)}")
        sentence, confidence_text, arg1, rel, arg2 = cols
        confidence = None
        if confidence_text.strip():
            try:
                confidence = float(confidence_text)
            except ValueError:
                confidence = math.nan
            if not math.isfinite(confidence):
                raise BenchmarkFormatError(
                    f"{where}: confidence must be a finite number or empty, got {confidence_text!r}")
        predictions.append(Prediction(sentence, arg1, rel, arg2, confidence))
    return predictions
