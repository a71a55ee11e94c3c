"""Canonical graph terms: what an extracted argument or relation *is* in the knowledge graph.

The parser keeps every part of a triple as the sentence writes it (``O Brasil``, ``do Brasil``,
``no terceiro trimestre de 2024``, ``nasceu em``); the evaluation scores those strings. The graph
stage (:mod:`ptoie.graph.rdf`, :mod:`ptoie.graph.labels`, :mod:`ptoie.graph.view`) turns them into
terms with the functions here, so that one thing said in two ways is one node:

* :func:`subject` / :func:`argument`: an argument becomes an :class:`Entity` whose ``key`` (the
  entity IRI's last segment) is the surface form without its leading article or (contracted)
  preposition, case- and diacritic-folded (``O Brasil``, ``do Brasil``, ``brasil`` -> ``brasil``);
  its ``label`` is that surface form with case and accents kept (``Brasil``). A trailing time
  expression is split off (``Pequim em abril de 2023`` -> ``Pequim`` with the time
  ``2023-04``), and so is the place of a second argument written as two names joined by ``em``
  (``Lula em Brasília`` -> ``Lula`` with the place ``Brasília``). A second argument that is a
  number, a percentage, an amount of money or a date is a :class:`Value`: a typed literal
  (``xsd:decimal``, ``xsd:date``, ``xsd:gYearMonth``, ``xsd:gYear``) or, for a time expression no
  parser reads (``terceiro trimestre de 2024``), a plain literal, never an entity node.
* :func:`relation`: the relation key is the phrase lemmatised word by word with ``simplemma``
  (``nasceu em``, ``nasce em`` -> ``nascer_em``); the preposition removed from the second
  argument moves to the relation (``fica | na Guiana Francesa`` -> ``fica em | Guiana Francesa``).

Dates are read by ``dateparser`` (Portuguese, absolute dates only: a relative one such as
``ontem`` would depend on the day the job runs). Written by hand, because no maintained library
does it for Portuguese: the list of articles and prepositions (closed word classes, a dozen
entries each), the reading of numbers with Portuguese separators and scale words (``1.234,5``,
``2,5 milhões``, ``R$ 3 bilhões``), and the gate that decides that a phrase is a time expression
before ``dateparser`` is asked (it would otherwise read ``maio`` in ``Rua 13 de Maio``).

Every function is pure and cached: a corpus repeats its surface forms, and the graph stage calls
them once per distinct form.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

import simplemma
from dateparser.date import DateDataParser

XSD = "http://www.w3.org/2001/XMLSchema#"
XSD_DECIMAL, XSD_DATE = XSD + "decimal", XSD + "date"
XSD_GYEAR, XSD_GYEARMONTH = XSD + "gYear", XSD + "gYearMonth"

ARTICLES = frozenset("o a os as um uma uns umas".split())
"""Definite and indefinite articles: dropped from the front of an argument."""
CONTRACTIONS = {
    **dict.fromkeys("do da dos das dum duma duns dumas".split(), "de"),
    **dict.fromkeys("no na nos nas num numa nuns numas".split(), "em"),
    **dict.fromkeys("ao aos à às".split(), "a"),
    **dict.fromkeys("pelo pela pelos pelas".split(), "por"),
}
"""Preposition + article contractions, with the preposition they contain."""
PREPOSITIONS = frozenset("de em por para com sem sobre entre até desde contra durante após "
                         "perante".split())
"""Prepositions that may open an argument (``a`` is read as an article there)."""

_PUNCTUATION = "\"'“”‘’«»()[]{}.,;:!?¿¡ \t\n"
_SPACES = re.compile(r"\s+")
_CACHE = 1 << 15
"""Entries per memoised function. 1M synthetic triples (`bench/scale.py kg`, 2026-12-04): 1 << 18
held 839 MB in the labels pass alone, 1 << 14 468 MB but cost 30 % of the graph stage's time."""


# -- folding --------------------------------------------------------------------------------------
def fold(text: str) -> str:
    """The key form of ``text``: NFKD without combining marks, case-folded, surrounding
    punctuation stripped, whitespace runs as ``_`` (``São  Paulo`` -> ``sao_paulo``)."""
    if not text.isascii():  # ASCII is its own NFKD and NFC form
        decomposed = unicodedata.normalize("NFKD", text)
        text = unicodedata.normalize(
            "NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))
    return _SPACES.sub("_", text.casefold().strip(_PUNCTUATION)) or "_"


def tidy(text: str) -> str:
    """``text`` in NFC, whitespace runs as one space, surrounding punctuation stripped."""
    return " ".join(unicodedata.normalize("NFC", text).split()).strip(_PUNCTUATION)


def strip_determiners(text: str) -> tuple[str | None, str]:
    """``(preposition, rest)``: a leading preposition (contracted or not; given as its base form,
    ``na`` -> ``em``) and a leading article removed (``da Europa`` -> ``('de', 'Europa')``,
    ``para a Europa`` -> ``('para', 'Europa')``, ``A Embraer`` -> ``(None, 'Embraer')``). A text
    that is nothing but such words is returned whole."""
    words = tidy(text).split(" ")
    preposition, start = None, 0
    first = words[0].casefold() if words else ""
    if first in CONTRACTIONS:
        preposition, start = CONTRACTIONS[first], 1
    elif first in PREPOSITIONS:
        preposition, start = first, 1
        if len(words) > 1 and words[1].casefold() in ARTICLES:
            start = 2
    elif first in ARTICLES:
        start = 1
    rest = " ".join(words[start:])
    if not rest:
        return None, " ".join(words)
    return preposition, rest


# -- values ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Value:
    """A literal: ``lexical`` typed ``datatype`` (an xsd IRI), or a plain Portuguese string when
    ``datatype`` is None; ``unit``: ``%``, a currency code (``BRL``) or the counted noun
    (``habitantes``), None for a bare number or a date."""

    lexical: str
    datatype: str | None = None
    unit: str | None = None
    preposition: str | None = None
    time: Value | None = None
    """A time expression split off an amount (``4,8% em 2024``)."""


_MONTHS = ("janeiro fevereiro março marco abril maio junho julho agosto setembro outubro novembro "
           "dezembro jan fev mar abr mai jun jul ago set out nov dez").split()
_TIME_WORDS = frozenset(_MONTHS + (
    "de do da dos das em o a primeiro segundo terceiro quarto último ultimo trimestre semestre "
    "início inicio começo fim final meados metade ano anos século seculo década decada mês mes "
    "dia verão verao inverno outono primavera").split())
_PERIODS = frozenset("trimestre semestre século seculo década decada".split())
"""Time words that make a phrase a time expression without a year (``no terceiro trimestre``)."""
_YEAR = re.compile(r"^(1\d{3}|20\d{2})$")
_NUMERIC_DATE = re.compile(r"^\d{1,2}[/.-]\d{1,2}[/.-](\d{4})$")
_YEAR_WORD = re.compile(r"(?<!\S)(?:1\d{3}|20\d{2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{4})(?!\S)")
_DATES = DateDataParser(languages=["pt"], settings={
    "PARSERS": ["absolute-time"], "PREFER_DAY_OF_MONTH": "first", "REQUIRE_PARTS": ["year"]})


def _is_time_expression(text: str) -> bool:
    """Every word a month, a number, a time word (``trimestre``, ``início``) or a connective,
    and a year or a month among them (the gate before ``dateparser``)."""
    words = text.casefold().split()
    if not words:
        return False
    dated = False
    for word in words:
        if _YEAR.match(word) or _NUMERIC_DATE.match(word):
            dated = True
        elif word in _MONTHS or word in _PERIODS:
            dated = True
        elif not (word in _TIME_WORDS or word.isdigit() or word in ("º", "°")):
            return False
    return dated


def _has_year(text: str) -> bool:
    """A word of ``text`` is a year or a numeric date."""
    return _YEAR_WORD.search(text) is not None


@lru_cache(maxsize=_CACHE)
def time_value(text: str) -> Value | None:
    """The time expression ``text`` as a literal (``xsd:date``, ``xsd:gYearMonth``,
    ``xsd:gYear``, or plain when ``dateparser`` cannot place it), None when it is not one."""
    if not _is_time_expression(text):
        return None
    if _YEAR.match(text):
        return Value(text, XSD_GYEAR)
    data = _DATES.get_date_data(text)
    if data.date_obj is not None:
        date = data.date_obj.date()
        if data.period == "year":
            return Value(f"{date.year:04d}", XSD_GYEAR)
        if data.period == "month":
            return Value(f"{date.year:04d}-{date.month:02d}", XSD_GYEARMONTH)
        return Value(date.isoformat(), XSD_DATE)
    return Value(text)


_SCALES = {"mil": 10**3, "milhão": 10**6, "milhao": 10**6, "milhões": 10**6, "milhoes": 10**6,
           "bilhão": 10**9, "bilhao": 10**9, "bilhões": 10**9, "bilhoes": 10**9,
           "mil milhões": 10**9, "trilhão": 10**12, "trilhões": 10**12}
_CURRENCY_SIGNS = {"r$": "BRL", "us$": "USD", "$": "USD", "€": "EUR", "£": "GBP"}
_CURRENCY_WORDS = {"real": "BRL", "reais": "BRL", "euro": "EUR", "euros": "EUR", "dólar": "USD",
                   "dólares": "USD", "dolares": "USD", "libra": "GBP", "libras": "GBP"}
_NUMBER = re.compile(
    r"^(?P<sign>R\$|US\$|€|£|\$)?\s*(?P<num>-?\d{1,3}(?:\.\d{3})+(?:,\d+)?|-?\d+(?:[,.]\d+)?)"
    r"\s*(?P<scale>mil milh[õo]es|mil|milh[ãa]o|milh[õo]es|bilh[ãa]o|bilh[õo]es|trilh[ãa]o|"
    r"trilh[õo]es)?\s*(?P<pct>%|por cento)?"
    r"(?:\s+(?:de\s+)?(?P<unit>[^\W\d_]+(?:\s+de\s+[^\W\d_]+)?))?$", re.I)
_QUALIFIED = re.compile(r"^(?:cerca de|mais de|menos de|quase|aproximadamente|até|ate|pelo menos)"
                        r"\s+\S*\d", re.I)


def _decimal(number: str) -> Decimal | None:
    if "," in number:
        number = number.replace(".", "").replace(",", ".")
    elif re.fullmatch(r"-?\d{1,3}(?:\.\d{3})+", number):
        number = number.replace(".", "")
    try:
        return Decimal(number)
    except InvalidOperation:
        return None


@lru_cache(maxsize=_CACHE)
def number_value(text: str) -> Value | None:
    """A number, percentage or amount of money (``0,9%``, ``R$ 2,5 bilhões``, ``3 milhões de
    habitantes``) as ``xsd:decimal`` with its unit; a qualified amount (``mais de 300``) as a
    plain literal; None when ``text`` is not an amount."""
    match = _NUMBER.match(text)
    if match is None:
        return Value(text) if _QUALIFIED.match(text) else None
    value = _decimal(match["num"])
    if value is None:
        return None
    if match["scale"]:
        value *= _SCALES[match["scale"].casefold()]
    unit = match["unit"]
    if match["pct"]:
        if unit:
            return None
        unit = "%"
    elif match["sign"]:
        if unit:
            return None
        unit = _CURRENCY_SIGNS[match["sign"].casefold()]
    elif unit:
        unit = _CURRENCY_WORDS.get(unit.casefold(), unit)
    lexical = format(value.normalize(), "f")
    return Value(lexical, XSD_DECIMAL, unit)


# -- entities -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Entity:
    """An argument as a graph node: ``key`` (folded; the IRI's last segment), ``label`` (the
    surface form without its leading article/preposition), ``preposition``: the words removed
    from its front that belong to the relation (the base preposition, ``em`` for ``na``, or a
    relational noun with it: ``sede em`` of ``sede no Rio de Janeiro``), and the ``time`` split
    off its end."""

    key: str
    label: str
    preposition: str | None = None
    time: Value | None = None
    place: Entity | None = None
    """A place split off a second argument (``Lula em Brasília`` -> ``Lula``, place
    ``Brasília``)."""


_TRAILING_TIME = re.compile(r"\s+(?:em|no|na|desde|até|durante|de|a partir de)\s+", re.I)


def _split_time(text: str) -> tuple[str, Value | None]:
    """``Pequim em abril de 2023`` -> ``('Pequim', 2023-04)``: the leftmost split whose tail is a
    time expression with a year and whose head is not a time expression (``Rua 13 de Maio``
    stays whole)."""
    if not _has_year(text):  # a tail's words are words of the text
        return text, None
    for match in _TRAILING_TIME.finditer(text):
        head, tail = text[:match.start()].strip(), text[match.end():].strip()
        if head and not _is_time_expression(head) and _has_year(tail):
            value = time_value(tail)
            if value is not None:
                return head, value
    return text, None


_PLACE = re.compile(r"\s+(?:em|no|na|nos|nas)\s+")
NAME_CONNECTORS = frozenset("de da do dos das e".split())
"""Lower-case words inside a name (``Ministério da Saúde``, ``Bósnia e Herzegovina``)."""


def _is_proper(text: str) -> bool:
    """A name: capitalised words, ``de``/``da``/``do``/``dos``/``das``/``e`` between them."""
    words = text.split(" ")
    return words[0][:1].isupper() and words[-1][:1].isupper() and all(
        word[:1].isupper() or word in NAME_CONNECTORS for word in words)


def _split_place(text: str) -> tuple[str, Entity | None]:
    """``Lula em Brasília`` -> ``('Lula', Brasília)``, ``TAP em Lisboa`` -> ``('TAP', Lisboa)``:
    a name, ``em`` (or ``no``, ``na``, ``nos``, ``nas``) and another name is the first name at
    the place of the second (Portuguese names join their words with ``de``, not ``em``). Anything
    else is returned whole."""
    for match in _PLACE.finditer(text):
        head, tail = text[:match.start()], text[match.end():]
        if _is_proper(head) and _is_proper(tail):
            return head, Entity(fold(tail), tail)
    return text, None


@lru_cache(maxsize=_CACHE)
def subject(surface: str) -> Entity:
    """The first argument of a triple as an entity (a subject is never a literal)."""
    preposition, rest = strip_determiners(surface)
    rest, time = _split_time(rest)
    return Entity(fold(rest), rest, preposition, time)


@lru_cache(maxsize=_CACHE)
def argument(surface: str) -> Entity | Value:
    """The second argument of a triple: a :class:`Value` for a time expression, a number, a
    percentage or an amount of money, else an :class:`Entity` (with the place split off a name
    written with it: :func:`_split_place`)."""
    preposition, rest = strip_determiners(surface)
    for read in (time_value, number_value):
        value = read(rest)
        if value is not None:
            return Value(value.lexical, value.datatype, value.unit, preposition)
    rest, time = _split_time(rest)
    value = number_value(rest) if time is not None else None
    if value is not None:
        return Value(value.lexical, value.datatype, value.unit, preposition, time)
    noun, rest = _relational_noun(rest)
    if noun is not None:
        preposition = f"{preposition} {noun}" if preposition else noun
    rest, place = _split_place(rest)
    return Entity(fold(rest), rest, preposition, time, place)


def _relational_noun(text: str) -> tuple[str | None, str]:
    """``sede no Rio de Janeiro`` -> ``('sede em', 'Rio de Janeiro')``, ``capital de Portugal``
    -> ``('capital de', 'Portugal')``: up to four lower-case words and a preposition before a
    name (a capitalised word) belong to the relation (``tem sede em``, ``é capital de``), as
    relation phrases in Open IE take their noun (``é capital de | Portugal``). Anything else is
    returned whole."""
    words = text.split(" ")
    for i, word in enumerate(words[1:5], start=1):
        base = CONTRACTIONS.get(word) or (word if word in PREPOSITIONS else None)
        if base is None:
            if not (word.isalpha() and word.islower()):
                return None, text
            continue
        if not all(w.isalpha() and w.islower() for w in words[:i]):
            return None, text
        _, rest = strip_determiners(" ".join(words[i + 1:]))
        if rest[:1].isupper():
            return " ".join(words[:i] + [base]), rest
        return None, text
    return None, text


# -- relations ------------------------------------------------------------------------------------
@lru_cache(maxsize=_CACHE)
def _lemma(word: str) -> str:
    word = word.casefold()
    if word in CONTRACTIONS:
        return CONTRACTIONS[word]
    return simplemma.lemmatize(word, lang="pt").casefold()


_KEY_ARTICLES = frozenset("o os um uma uns umas".split())
"""Articles left out of a relation key (``a``, ``as`` only before another word: at the end they
may be the preposition ``a``)."""


_LEMMATISED = 2
"""Words of a relation phrase that are lemmatised: the verb and, after an auxiliary, its
participle (``foi financiada`` -> ``ser financiado``); later words are nouns and prepositions,
which a lemmatiser without context may read as verbs (``estado`` -> ``estar``)."""


def _relation_lemmas(words: list[str]) -> list[str]:
    lemmas = [_lemma(word) if i < _LEMMATISED else CONTRACTIONS.get(word.casefold(), word)
              for i, word in enumerate(words)]
    return [lemma for i, (word, lemma) in enumerate(zip(words, lemmas))
            if not (word.casefold() in _KEY_ARTICLES
                    or (word.casefold() in ("a", "as") and i < len(words) - 1))]


@lru_cache(maxsize=_CACHE)
def relation(surface: str, preposition: str | None = None) -> tuple[str, str]:
    """``(key, label)`` of a relation phrase, with the words moved from its second argument
    (``preposition``: ``em``, ``sede em``) appended unless the phrase already ends with them.
    The key is the lemmas without articles: ``('nasceu em', None)`` and ``('nasce', 'em')`` ->
    ``nascer_em``, ``('é a capital de', None)`` and ``('é', 'capital de')`` -> ``ser_capital_de``;
    the label is the phrase as written with the moved words (``nasce em``)."""
    label = tidy(surface) or surface
    words = label.split(" ")
    if preposition is not None:
        moved = preposition.split(" ")
        if _relation_lemmas(words[-len(moved):]) != _relation_lemmas(moved):
            words += moved
            label = f"{label} {preposition}"
    return fold("_".join(_relation_lemmas(words)) or label), label


def relation_of(rel: str, arg2: str) -> tuple[str, str]:
    """:func:`relation` of a triple's relation and second argument."""
    return relation(rel, argument(arg2).preposition)
