"""Triple matchers: does a predicted ``(arg1, rel, arg2)`` match a gold one?

Every matcher compares *tokens*, produced by one of two normalizations:

* ``"raw"`` -- the 2018 oie-benchmark's own view: tokens are the whitespace split of the text as
  written; case-sensitive; ``do`` and ``de o`` differ, ``Banco`` and ``banco`` differ, ``3%`` and
  ``3 %`` differ.
* ``"pt"`` -- Portuguese-aware (the gate's default), :func:`ptoie.text.tokens.normalize_for_match`: NFC,
  words and punctuation split apart (``3%`` -> ``3 %``), contractions split (``do`` -> ``de o``,
  ``na`` -> ``em a``, ``pelo`` -> ``por o`` ...), every token case-folded. PUD-100's gold writes the
  same argument in both contraction forms (``os clientes do Banco`` and ``os clientes de o Banco``),
  so ``raw`` scores a model by which of the two spellings it happens to copy. For the matchers
  that compare part by part (``strict``, ``exact``, ``carb``), a preposition that ends a part
  and forms a contraction with the first word of the next part moves to that part
  (:func:`part_tokens`): ``é membro de | a Formas`` (PUD-100's gold and the model's training data
  split a contraction this way) and ``é membro | da Formas`` (the sentence's own words, as the
  parser labels parts) are the same tokens part by part.

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

A gold tuple may have no ``arg2`` (empty string: a 2-part tuple, relation and subject only). It is
scored as CaRB scores a reference with one argument: only the parts the gold has are compared, and
the prediction's ``arg2`` is ignored -- ``lexical`` covers the gold tokens ``rel arg1``; ``strict``
needs both ``arg1`` and ``rel`` equal; ``exact`` needs ``arg1`` and ``rel`` to be the same token
sequences; ``carb`` needs a shared token in ``rel`` and ``arg1`` and counts the predicted tokens
of those two parts only (CaRB's ``linient_tuple_match`` adds a predicted argument's words to the
precision denominator only for the arguments the reference has).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Literal

from ptoie.text.tokens import is_contraction_pair, letters_and_digits, normalize_for_match

Normalization = Literal["raw", "pt"]
MatcherName = Literal["lexical", "strict", "exact", "carb"]
MATCHERS: tuple[MatcherName, ...] = ("lexical", "strict", "exact", "carb")
NORMALIZATIONS: tuple[Normalization, ...] = ("raw", "pt")
LEXICAL_THRESHOLD = 0.5
"""A lexical match needs coverage strictly above this (oie-benchmark's ``LEXICAL_THRESHOLD``)."""

Parts = tuple[str, str, str]


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


def gold_parts_present(gold: Parts) -> tuple[int, ...]:
    """Indices of the parts a gold tuple has: (0, 1, 2), or (0, 1) when its arg2 is empty."""
    return (0, 1, 2) if gold[2].strip() else (0, 1)


def part_tokens(parts: Parts, normalization: Normalization) -> list[list[str]]:
    """Tokens of each part, as the part-by-part matchers compare them.

    Under ``pt``, in part order (arg1, rel, arg2), a preposition that ends a part and forms a
    contraction with the first token of the next part (``de`` + ``a``, ``em`` + ``o``) moves to the
    start of the next part, when the part keeps a token: ``é membro de | a Formas`` and ``é membro |
    da Formas`` both become ``é membro | de a formas``. Under ``raw`` the tokens are unchanged.
    """
    split = [tokens(p, normalization) for p in parts]
    if normalization == "pt":
        for i in range(1, len(split)):
            before, after = split[i - 1], split[i]
            if len(before) > 1 and after and is_contraction_pair(before[-1], after[0]):
                after.insert(0, before.pop())
    return split


def lexical_coverage(gold: Parts, pred: Parts, normalization: Normalization) -> float:
    """Stanovsky et al. (2018): equal (gold token, predicted token) pairs / number of gold tokens,
    over the bags of words of ``rel arg1 arg2`` (``rel arg1`` for a gold without arg2; the
    prediction's bag always has all its parts)."""
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
    return _squashed(tokens(part, normalization))


def _squashed(part_tokens: list[str]) -> str:
    return letters_and_digits("".join(part_tokens))


def strict_match(gold: Parts, pred: Parts, normalization: Normalization) -> bool:
    """At least 2 of the gold's parts equal once squashed (:func:`part_tokens`, then
    :func:`letters_and_digits`): 2 of 3, or both of a 2-part gold."""
    g, p = part_tokens(gold, normalization), part_tokens(pred, normalization)
    equal_parts = sum(_squashed(g[i]) == _squashed(p[i]) for i in gold_parts_present(gold))
    return equal_parts >= 2


def exact_match(gold: Parts, pred: Parts, normalization: Normalization) -> bool:
    """Every part the gold has is the same token sequence (:func:`part_tokens`) in the prediction."""
    g, p = part_tokens(gold, normalization), part_tokens(pred, normalization)
    return all(g[i] == p[i] for i in gold_parts_present(gold))


def carb_credit(gold: Parts, pred: Parts, normalization: Normalization) -> tuple[float, float] | None:
    """CaRB's tuple match: ``(precision, recall)`` credit of ``pred`` against ``gold``, or None.

    Per part (tokens of :func:`part_tokens`), ``overlap`` = size of the multiset intersection of
    gold and predicted tokens. No
    match (None) when any part has overlap 0 (CaRB requires a shared word in the relation and in
    both arguments). Otherwise precision = total overlap / predicted tokens, recall = total
    overlap / gold tokens.

    Only the parts the gold has take part (:func:`gold_parts_present`): for a gold without arg2,
    the prediction's arg2 is left out of the overlap test and of both denominators, as CaRB's
    ``linient_tuple_match`` does for a reference with one argument.
    """
    present = gold_parts_present(gold)
    gold_tokens, pred_tokens = part_tokens(gold, normalization), part_tokens(pred, normalization)
    gold_parts = [gold_tokens[i] for i in present]
    pred_parts = [pred_tokens[i] for i in present]
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
