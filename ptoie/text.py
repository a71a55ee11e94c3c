"""Portuguese surface-text utilities shared by the parser, the scorer and training data preparation.

Contractions: TransAlign (and the PUD-100 CoNLL) split them (``de o``, ``em a``); the surface
sentence joins them (``do``, ``na``). :func:`join_contractions` goes from split to surface and
:func:`split_contractions` the other way, so that ``do Banco`` and ``de o Banco`` compare equal.
"""

from __future__ import annotations

import re
import unicodedata

# Split form -> contracted form. Prepositions de/em/a/por with articles, demonstratives and
# personal pronouns, as they occur in Brazilian Portuguese corpora.
_CONTRACTIONS: dict[tuple[str, str], str] = {}


def _add(prep: str, contracted_prefix: str, words: list[str], joined: list[str] | None = None) -> None:
    for i, word in enumerate(words):
        _CONTRACTIONS[(prep, word)] = joined[i] if joined else contracted_prefix + word


_ARTICLES = ["o", "a", "os", "as"]
_INDEF = ["um", "uma", "uns", "umas"]
_DEMONSTRATIVES = ["este", "esta", "estes", "estas", "esse", "essa", "esses", "essas",
                   "aquele", "aquela", "aqueles", "aquelas", "isto", "isso", "aquilo"]
_PRONOUNS = ["ele", "ela", "eles", "elas"]
_ADVERBS = ["aqui", "aí", "ali"]

_add("de", "d", _ARTICLES + _INDEF + _DEMONSTRATIVES + _PRONOUNS + _ADVERBS)
_add("em", "n", _ARTICLES + _INDEF + _DEMONSTRATIVES + _PRONOUNS)
_add("a", "", _ARTICLES, ["ao", "à", "aos", "às"])
_add("a", "", ["aquele", "aquela", "aqueles", "aquelas", "aquilo"],
     ["àquele", "àquela", "àqueles", "àquelas", "àquilo"])
_add("por", "", _ARTICLES, ["pelo", "pela", "pelos", "pelas"])

_EXPANSIONS: dict[str, tuple[str, str]] = {v: k for k, v in _CONTRACTIONS.items()}
# Ambiguous surface words that are far more often something else: "nos" (pronoun), "na"/"no"
# are safe, "ao" safe. Only "nos" and "das"/"dos" need care; "nos" as pronoun ("deram-nos")
# is rare in OIE parts, and both sides of a comparison are expanded the same way, so the
# expansion is applied uniformly: comparisons stay symmetric.

_TOKEN_RE = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]", re.UNICODE)


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def join_contractions(tokens: list[str]) -> list[str]:
    """``["de", "o", "Banco"]`` -> ``["do", "Banco"]`` (case of the first word kept)."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if i + 1 < len(tokens):
            key = (tokens[i].lower(), tokens[i + 1].lower())
            joined = _CONTRACTIONS.get(key)
            if joined is not None:
                out.append(_match_case(tokens[i], joined))
                i += 2
                continue
        out.append(tokens[i])
        i += 1
    return out


def split_contractions(tokens: list[str]) -> list[str]:
    """``["do", "Banco"]`` -> ``["de", "o", "Banco"]``; other tokens unchanged."""
    out: list[str] = []
    for token in tokens:
        expansion = _EXPANSIONS.get(token.lower())
        if expansion is None:
            out.append(token)
        else:
            out.extend((_match_case(token, expansion[0]), expansion[1]))
    return out


def tokenize_with_spans(text: str) -> list[tuple[str, int, int]]:
    """Word and punctuation tokens of ``text`` with their (start, end) character offsets."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


def tokenize(text: str) -> list[str]:
    return [tok for tok, _, _ in tokenize_with_spans(text)]


def normalize_for_match(text: str) -> list[str]:
    """Comparison tokens: NFC, case-folded, contractions split (``do`` == ``de o``)."""
    text = unicodedata.normalize("NFC", text)
    return [t.casefold() for t in split_contractions(tokenize(text))]


def collapse_spaces(text: str) -> str:
    return " ".join(text.split())


def find_span(part: str, sentence: str) -> tuple[int, int] | None:
    """Character span of ``part`` in ``sentence``, or None when it does not occur there.

    Tries an exact substring first, then a case-insensitive, contraction-tolerant token match
    (``de o Banco`` is found in ``... do Banco ...``); the span covers whole sentence tokens.
    """
    part = collapse_spaces(part)
    if not part:
        return None
    idx = sentence.find(part)
    if idx >= 0:
        return idx, idx + len(part)
    idx = sentence.casefold().find(part.casefold())
    if idx >= 0 and len(sentence.casefold()) == len(sentence):
        return idx, idx + len(part)

    # Token-level: expand every sentence token into its comparison sub-tokens, each carrying the
    # span of the token it came from, then look for the part's sub-token sequence.
    sub: list[tuple[str, int, int]] = []
    for tok, start, end in tokenize_with_spans(sentence):
        for piece in split_contractions([unicodedata.normalize("NFC", tok)]):
            sub.append((piece.casefold(), start, end))
    needle = normalize_for_match(part)
    n = len(needle)
    if n == 0:
        return None
    words = [s[0] for s in sub]
    for i in range(len(words) - n + 1):
        if words[i:i + n] == needle:
            return sub[i][1], sub[i + n - 1][2]
    return None
