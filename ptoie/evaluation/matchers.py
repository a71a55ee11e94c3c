"""Triple matchers: does a predicted ``(arg1, rel, arg2)`` match a gold one?

Every matcher compares *tokens*, produced by one of two normalizations:

* ``"raw"`` -- the 2018 oie-benchmark's own view: tokens are the whitespace split of the text as
  written; case-sensitive; ``do`` and ``de o`` differ, ``Banco`` and ``banco`` differ, ``3%`` and
  ``3 %`` differ.
* ``"pt"`` -- Portuguese-aware (the gate's default), :func:`ptoie.text.normalize_for_match`: NFC,
  words and punctuation split apart (``3%`` -> ``3 %``), contractions split (``do`` -> ``de o``,
  ``na`` -> ``em a``, ``pelo`` -> ``por o`` ...), every token case-folded. PUD-100's gold writes the
  same argument in both contraction forms (``os clientes do Banco`` and ``os clientes de o Banco``),
  so ``raw`` scores a model by which of the two spellings it happens to copy.

Matchers (``gold`` and ``pred`` are ``(arg1, rel, arg2)``):

* ``lexical`` -- Stanovsky et al. (2018), oie-benchmark before its 2019 change. Tokens of
  ``rel + " " + arg1 + " " + arg2``; ``count`` = number of (gold token, predicted token) pairs that
  are equal (a token repeated on both sides counts once per pair); coverage = count / number of
  gold tokens; match when coverage > 0.5.
* ``strict`` -- each part reduced to its letters, marks and digits (tokens joined, every space,
  punctuation mark and symbol removed) and compared position by position (arg1/arg1, rel/rel,
  arg2/arg2); match when at least 2 of the 3 parts are equal.
* ``exact`` -- all three parts have the same token sequence.
* ``carb`` -- CaRB-style (Bhardwaj et al. 2019) graded credit, :func:`carb_credit`.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable
from typing import Literal

from ..text import normalize_for_match

Normalization = Literal["raw", "pt"]
MatcherName = Literal["lexical", "strict", "exact", "carb"]
MATCHERS: tuple[MatcherName, ...] = ("lexical", "strict", "exact", "carb")
NORMALIZATIONS: tuple[Normalization, ...] = ("raw", "pt")
LEXICAL_THRESHOLD = 0.5
"""A lexical match needs coverage strictly above this (oie-benchmark's ``LEXICAL_THRESHOLD``)."""

Parts = tuple[str, str, str]


def letters_and_digits(text: str) -> str:
    """``text`` (NFC) keeping only letters, combining marks and digits (Unicode L*, M*, N*):
    every space, punctuation mark and symbol removed."""
    return "".join(ch for ch in unicodedata.normalize("NFC", text)
                   if unicodedata.category(ch)[0] in "LMN")


def sentence_key(text: str) -> str:
    """Key that pairs a predicted sentence with a gold sentence: :func:`letters_and_digits`.
    Case is kept, as in oie-benchmark (which removed spaces and ASCII punctuation)."""
    return letters_and_digits(text)


def tokens(text: str, normalization: Normalization) -> list[str]:
    """Comparison tokens of ``text`` under ``normalization`` (see the module docstring)."""
    if normalization == "raw":
        return text.split()
    if normalization == "pt":
        return normalize_for_match(text)
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")


def lexical_coverage(gold: Parts, pred: Parts, normalization: Normalization) -> float:
    """Stanovsky et al. (2018): equal (gold token, predicted token) pairs / number of gold tokens,
    over the bags of words of ``rel arg1 arg2``."""
    g1, g_rel, g2 = gold
    p1, p_rel, p2 = pred
    gold_tokens = tokens(f"{g_rel} {g1} {g2}", normalization)
    if not gold_tokens:
        return 0.0
    pred_counts = Counter(tokens(f"{p_rel} {p1} {p2}", normalization))
    equal_pairs = sum(pred_counts[t] for t in gold_tokens)
    return equal_pairs / len(gold_tokens)


def lexical_match(gold: Parts, pred: Parts, normalization: Normalization) -> bool:
    return lexical_coverage(gold, pred, normalization) > LEXICAL_THRESHOLD


def squashed_part(part: str, normalization: Normalization) -> str:
    """A part as the strict matcher compares it: its tokens joined, then :func:`letters_and_digits`."""
    return letters_and_digits("".join(tokens(part, normalization)))


def strict_match(gold: Parts, pred: Parts, normalization: Normalization) -> bool:
    equal_parts = sum(squashed_part(g, normalization) == squashed_part(p, normalization)
                      for g, p in zip(gold, pred))
    return equal_parts >= 2


def exact_match(gold: Parts, pred: Parts, normalization: Normalization) -> bool:
    return all(tokens(g, normalization) == tokens(p, normalization) for g, p in zip(gold, pred))


def carb_credit(gold: Parts, pred: Parts, normalization: Normalization) -> tuple[float, float] | None:
    """CaRB's tuple match: ``(precision, recall)`` credit of ``pred`` against ``gold``, or None.

    Per part, ``overlap`` = size of the multiset intersection of gold and predicted tokens. No
    match (None) when any part has overlap 0 (CaRB requires a shared word in the relation and in
    both arguments). Otherwise precision = total overlap / predicted tokens, recall = total
    overlap / gold tokens.
    """
    gold_parts = [tokens(p, normalization) for p in gold]
    pred_parts = [tokens(p, normalization) for p in pred]
    overlaps = [sum((Counter(g) & Counter(p)).values()) for g, p in zip(gold_parts, pred_parts)]
    if min(overlaps) == 0:
        return None
    total = sum(overlaps)
    return total / sum(map(len, pred_parts)), total / sum(map(len, gold_parts))


BINARY_MATCHERS: dict[str, Callable[[Parts, Parts, Normalization], bool]] = {
    "lexical": lexical_match,
    "strict": strict_match,
    "exact": exact_match,
}
