"""Model output -> triples. Never raises, whatever the model wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Sequence

from ptoie.extract.prompt import NO_TRIPLE
from ptoie.text.tokens import locate_part, spans_overlap
from ptoie.triple import Triple


@dataclass(slots=True)
class ParseResult:
    """Triples parsed from one answer, and how many non-empty lines could not be used."""

    triples: list[Triple] = field(default_factory=list)
    rejected: int = 0
    duplicates: int = 0
    unsupported: int = 0
    """Triples dropped by ``require_spans`` (not :func:`supported` by the sentence)."""


def _dedup_key(parts: Sequence[str]) -> tuple[str, ...]:
    return tuple(" ".join(p.casefold().split()) for p in parts)


def _restates(key: tuple[str, ...], earlier: tuple[str, ...]) -> bool:
    """Same arg1 and relation, and one arg2 begins the other."""
    return key[:2] == earlier[:2] and (key[2].startswith(earlier[2]) or earlier[2].startswith(key[2]))


def supported(labels: Sequence[str], spans: Sequence[tuple[int, int] | None]) -> bool:
    """Whether a located triple reads as an extraction of its sentence: arg1 and arg2 are both
    spans of it and do not overlap, and no part repeats another (``quiser | quiser``). Every gold
    extraction of TransAlign, the training data, has that shape (BIOES tags over the sentence's
    tokens; the relation may be implicit, so it need not be a span)."""
    arg1, arg2 = spans[0], spans[2]
    return (arg1 is not None and arg2 is not None and not spans_overlap(arg1, arg2)
            and len({part.casefold() for part in labels}) == 3)


def parse_line(line: str) -> tuple[str, str, str] | None:
    """``"a | b | c"`` -> ``("a", "b", "c")``; None for anything that is not exactly one triple."""
    parts = [" ".join(p.split()) for p in line.split("|")]
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def _located(parts: tuple[str, str, str], sentence: str | None
             ) -> tuple[tuple[str, ...], list[tuple[int, int] | None]]:
    """The parts as the sentence writes them, and their spans (a part not found: the model's
    string, span None); the relation and arg2 away from arg1 where the sentence allows."""
    located: list[tuple[str, tuple[int, int]] | None] = [None, None, None]
    if sentence:
        located[0] = locate_part(parts[0], sentence)
        avoid = located[0][1] if located[0] else None
        located[1:] = [locate_part(p, sentence, avoid=avoid) for p in parts[1:]]
    labels = tuple(found[0] if found else p for found, p in zip(located, parts))
    return labels, [found[1] if found else None for found in located]


def parse_answer(text: str | None, sentence: str | None = None,
                 line_confidences: Sequence[float | None] | None = None, *,
                 require_spans: bool = False) -> ParseResult:
    """Parse an assistant answer into triples.

    * one triple per line ``arg1 | rel | arg2``; other non-empty lines are counted in ``rejected``
      (the :data:`~ptoie.extract.prompt.NO_TRIPLE` line is not a rejection);
    * ``text`` is the answer alone: generation stops at, and leaves out, the end-of-turn markup
      (``Extractor.extract_batch`` stops at :data:`~ptoie.extract.prompt.STOP_TEXTS`); a
      truncated last line is simply rejected;
    * with ``sentence``, each part is located in it (:func:`ptoie.text.tokens.locate_part`; the relation
      and arg2 away from arg1 where the sentence allows): a part found
      there becomes **the sentence's own text** ``sentence[start:end]`` of its span (the model's
      ``de a Formas`` becomes ``da Formas``, ``o enxofre`` becomes ``O enxofre``, and ``é membro de
      | a Formas`` becomes ``é membro | da Formas``: a contracted word goes to the part holding its
      article); a part not found keeps the model's string, with span None. The model's own
      strings are kept only in the raw answer (``SentenceResult.raw_output``);
    * identical triples (case and spacing aside, compared after the step above) are kept once, the
      first occurrence wins; so is a triple that repeats an earlier one's arg1 and relation with an
      arg2 that is a prefix of the earlier arg2 or has it as prefix (a line the model began again
      and cut, or stretched: ``os únicos animais int`` after ``os únicos animais inteligentes``);
    * with ``sentence`` and ``require_spans``, a triple that is not :func:`supported` (an argument
      the sentence does not hold, arguments that overlap, a part that repeats another) is dropped
      and counted in ``unsupported``;
    * ``line_confidences[i]`` is the confidence of the i-th line of ``text`` (split on ``\\n``).
    """
    result = ParseResult()
    if not text:
        return result
    seen: set[tuple[str, ...]] = set()
    for i, raw in enumerate(text.split("\n")):
        line = raw.strip()
        if not line:
            continue
        if line.casefold().rstrip(".") == NO_TRIPLE:
            continue
        parts = parse_line(line)
        if parts is None:
            result.rejected += 1
            continue
        labels, spans = _located(parts, sentence)
        if require_spans and sentence and not supported(labels, spans):
            result.unsupported += 1
            continue
        key = _dedup_key(labels)
        if key in seen or any(_restates(key, earlier) for earlier in seen):
            result.duplicates += 1
            continue
        seen.add(key)
        confidence = None
        if line_confidences is not None and i < len(line_confidences):
            confidence = line_confidences[i]
        result.triples.append(Triple(*labels, confidence=confidence, arg1_span=spans[0],
                                     rel_span=spans[1], arg2_span=spans[2]))
    return result
