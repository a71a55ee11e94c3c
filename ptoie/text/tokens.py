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


def letters_and_digits(text: str) -> str:
    """``text`` (NFC) keeping only letters, combining marks and digits (Unicode L*, M*, N*):
    every space, punctuation mark and symbol removed."""
    return "".join(ch for ch in unicodedata.normalize("NFC", text)
                   if unicodedata.category(ch)[0] in "LMN")


def collapse_spaces(text: str) -> str:
    return " ".join(text.split())


def is_contraction_pair(first: str, second: str) -> bool:
    """Whether ``first second`` is the split form of a contraction (``de o`` -> ``do``)."""
    return (first.casefold(), second.casefold()) in _CONTRACTIONS


def find_span(part: str, sentence: str) -> tuple[int, int] | None:
    """Character span of ``part`` in ``sentence``, or None when it does not occur there: the span
    of :func:`locate_part`."""
    found = locate_part(part, sentence)
    return found[1] if found else None


def locate_part(part: str, sentence: str, *, avoid: tuple[int, int] | None = None
                ) -> tuple[str, tuple[int, int]] | None:
    """Where a triple part occurs in ``sentence``, and how the sentence writes it there.

    Returns ``(text, (start, end))`` with ``text == sentence[start:end]``, or None when the part
    does not occur in the sentence.

    The part is looked for as a sequence of sentence tokens, case-insensitively and tolerant of
    contractions: its :func:`normalize_for_match` tokens must equal those of the sentence, whose
    contracted words count as their two pieces (``de o Banco`` is found in ``... do Banco ...``,
    ``3 %`` in ``3%``). Among several occurrences, the first one the sentence writes exactly as the
    part is taken, else the first; with ``avoid`` (another part's span), the occurrences that do
    not overlap it are preferred (the arg2 ``o Brasil`` after the arg1 ``O presidente do Brasil``
    is a later ``o Brasil`` when the sentence has one). The span covers whole words: a contracted
    word belongs to the part that holds its second piece (the article or pronoun, which begins the
    noun phrase), so

    * a part that starts with that piece takes the whole word: ``a Formas`` in ``é membro da
      Formas`` is ``da Formas``;
    * a part that ends with the first piece (the preposition) leaves the word out: ``é membro de``
      is ``é membro`` -- unless the preposition is all the part has (``de`` is then ``da``).

    So a contraction split between two parts (``é membro de | a Formas``) ends up whole in the
    second (``é membro | da Formas``): the parts read as the sentence does, and their spans do not
    overlap. ``ptoie.evaluation``'s ``pt`` normalisation scores both forms alike. A part that
    matches only part of a word (``membro d``, ``govern``) is not found.
    """
    part = collapse_spaces(part)
    needle = normalize_for_match(part)
    if not needle:
        return None
    found = _occurrences(needle, sentence)
    if avoid is not None:
        found = [located for located in found if not spans_overlap(located[1], avoid)] or found
    return next((located for located in found if located[0] == part), found[0] if found else None)


def spans_overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two character spans share a character."""
    return a[0] < b[1] and b[0] < a[1]


def _occurrences(needle: list[str], sentence: str) -> list[tuple[str, tuple[int, int]]]:
    """Every ``(text, span)`` where the sentence's pieces read ``needle``, in sentence order."""
    # Every sentence token expanded into its comparison pieces: (piece, token index, piece index).
    tokens = tokenize_with_spans(sentence)
    n_pieces: list[int] = []
    sub: list[tuple[str, int, int]] = []
    for t, (tok, _, _) in enumerate(tokens):
        pieces = split_contractions([unicodedata.normalize("NFC", tok)])
        n_pieces.append(len(pieces))
        sub.extend((piece.casefold(), t, k) for k, piece in enumerate(pieces))
    n = len(needle)
    words = [s[0] for s in sub]
    found = []
    for i in range(len(words) - n + 1):
        if words[i:i + n] != needle:
            continue
        first_token, (_, last_token, last_piece) = sub[i][1], sub[i + n - 1]
        if last_piece < n_pieces[last_token] - 1 and last_token > first_token:
            last_token -= 1                  # ends with the preposition of a contraction: leave it
        span = (tokens[first_token][1], tokens[last_token][2])
        found.append((sentence[span[0]:span[1]], span))
    return found
