"""Portuguese sentence splitting for the batch job: document text -> sentences.

Rules, in order:

* A blank line (paragraph break) always ends a sentence; single line breaks are wrapped prose.
* A sentence ends at ``.``, ``!``, ``?``, ``…`` or ``...`` followed by optional closing quotes or
  brackets (``” » " ' ) ]``) and whitespace, when the next word starts with an upper-case letter or
  a digit (looking past opening quotes, brackets and dialogue dashes). So ``3,5`` / ``3.5``, ``…
  e depois`` and ``— Quem és? — perguntou ele.`` do not split.
* A period after an abbreviation that always precedes something (``Sr.``, ``Dra.``, ``Prof.``,
  ``p. ex.``, ``pág.``, ``n.º``, ``art.``, ``séc.``, a single-letter initial as in ``J. K.``) never
  ends a sentence, except a Roman numeral I, V or X after a capitalised name (``D. Manuel I.
  Vasco da Gama ...``: a regnal number ends the sentence when an upper-case word follows). Abbreviations that may close a sentence (``etc.``, ``a.C.``, ``d.C.``, siglas as
  ``E.U.A.`` or ``S.A.``) end one only when an upper-case word follows.

Sentences longer than ``max_chars`` (the prompt of a 135M model is no place for a 5,000-character
run-on) are cut at ``;``, then ``:``, then ``,`` into pieces packed up to ``max_chars``; a piece
that is still too long is returned apart, for the caller to skip and record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

LongSentences = Literal["split", "skip"]

# Abbreviations (lower case, with their final period) after which a sentence never ends.
PREFIX_ABBREVIATIONS = frozenset("""
    sr. sra. srs. sras. srta. dr. dra. drs. dras. prof. profa. profs. exmo. exma. ilmo. ilma.
    sto. sta. fr. pe. gen. cel. cap. ten. sgt. maj. alm. eng. arq. adv. des. pres. av. rod. pç.
    lgo. est. nº. núm. num. nr. art. arts. inc. cf. cfr. p. pp. pág. págs. pag. fl. fls. vol.
    vols. caps. ed. eds. fig. figs. tab. séc. sec. ex. op. cit. ibid. obs. tel. ref. refs. aprox.
    pref. dep. sen. vs. jan. fev. abr. jun. jul. ago. out. nov. seg. qua. qui. sáb. mr. mrs. ms.
""".split())
# Left out on purpose: abbreviations that are also words ending sentences ("mar.", "dez.", "dom.",
# "ter.", "no."). Everything else with a final period -- "etc.", "a.C.", siglas such as "E.U.A." --
# may close a sentence, and does so when an upper-case word follows.

_END = re.compile(r"(?:\.{2,}|…|[.!?])+[\"'”’»)\]]*(?=\s)")
_INITIAL = re.compile(r"^[^\W\d_]\.$")
_ROMAN = frozenset("IVX")
_OPENERS = "\"'“‘«([—–-"
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_SPACES = re.compile(r"\s+")


@dataclass(slots=True)
class SplitDocument:
    """A document's sentences, and the pieces left out for being longer than ``max_chars``."""

    sentences: list[str] = field(default_factory=list)
    too_long: list[str] = field(default_factory=list)


def _next_word_starts_sentence(text: str, pos: int) -> bool:
    """Does the first letter or digit at or after ``pos`` (past openers) start a sentence?"""
    n = len(text)
    while pos < n and (text[pos].isspace() or text[pos] in _OPENERS):
        pos += 1
    if pos >= n:
        return True
    ch = text[pos]
    return ch.isupper() or ch.isdigit()


def _word_before(text: str, end: int) -> str:
    start = end
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:end].lstrip(_OPENERS)


def _regnal_number(text: str, start: int, word: str) -> bool:
    """Is the one-letter ``word`` at ``start`` a Roman numeral after a name (``D. Manuel I.``,
    ``D. João V.``), not an initial (``J. K.``, ``D. Maria``)? It is when the letter is I, V or X
    and the word before it is a capitalised name, not an initial or an abbreviation."""
    if word[0] not in _ROMAN:
        return False
    before = _word_before(text, start).rstrip()
    if not before and start > 0:
        before = _word_before(text, start - 1)
    return (len(before) > 1 and before[0].isupper() and before[1:].isalpha()
            and not before.endswith("."))


def _is_boundary(text: str, match: re.Match[str]) -> bool:
    if not _next_word_starts_sentence(text, match.end()):
        return False
    punct = match.group(0).rstrip("\"'”’»)]")
    if punct != ".":
        return True  # ?, !, … or an ellipsis before an upper-case word
    word = _word_before(text, match.start() + 1)
    if word.lower() in PREFIX_ABBREVIATIONS:
        return False
    if _INITIAL.match(word):
        return _regnal_number(text, match.start() + 1 - len(word), word)
    return True  # "etc.", "a.C.", siglas: a sentence ends there before an upper-case word


def split_paragraph(paragraph: str) -> list[str]:
    """Sentences of one paragraph (no length limit), whitespace normalised to single spaces."""
    text = _SPACES.sub(" ", paragraph).strip()
    sentences, start = [], 0
    for match in _END.finditer(text):
        if _is_boundary(text, match):
            sentences.append(text[start:match.end()].strip())
            start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return [s for s in sentences if s]


def _pack(pieces: list[str], joiner: str, max_chars: int) -> list[str]:
    """Greedily join consecutive ``pieces`` with ``joiner`` while the result fits ``max_chars``."""
    packed: list[str] = []
    for piece in pieces:
        if packed and len(packed[-1]) + len(joiner) + len(piece) <= max_chars:
            packed[-1] = packed[-1] + joiner + piece
        else:
            packed.append(piece)
    return packed


def limit_length(sentence: str, max_chars: int, separators: tuple[str, ...] = (";", ":", ",")
                 ) -> tuple[list[str], list[str]]:
    """``(pieces that fit, pieces still too long)`` of ``sentence`` cut at ``separators`` in order.

    A cut keeps the separator at the end of the left piece: ``"a; b"`` -> ``["a;", "b"]``.
    """
    if len(sentence) <= max_chars:
        return [sentence], []
    if not separators:
        return [], [sentence]
    sep, rest = separators[0], separators[1:]
    parts = [p.strip() for p in re.split(rf"(?<={re.escape(sep)})\s+", sentence) if p.strip()]
    if len(parts) == 1:
        return limit_length(sentence, max_chars, rest)
    fits: list[str] = []
    too_long: list[str] = []
    for piece in _pack(parts, " ", max_chars):
        ok, bad = limit_length(piece, max_chars, rest)
        fits += ok
        too_long += bad
    return fits, too_long


def split_sentences(text: str, *, max_chars: int = 600, long_sentences: LongSentences = "split"
                    ) -> SplitDocument:
    """Split a document into sentences of at most ``max_chars`` characters (see module doc).

    ``long_sentences``: ``"split"`` cuts a longer sentence at ``;`` ``:`` ``,`` (pieces still too
    long go to ``too_long``); ``"skip"`` puts the whole sentence in ``too_long``.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    result = SplitDocument()
    for paragraph in _PARAGRAPH.split(text):
        for sentence in split_paragraph(paragraph):
            if long_sentences == "skip":
                fits, too_long = ([sentence], []) if len(sentence) <= max_chars else ([], [sentence])
            else:
                fits, too_long = limit_length(sentence, max_chars)
            result.sentences += fits
            result.too_long += too_long
    return result
