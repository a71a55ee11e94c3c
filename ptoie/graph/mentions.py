"""Within-document mentions: a subject that names its entity indirectly, linked to that entity.

News text names a thing once in full, then says ``Ele``, ``A empresa`` or ``Saramago``. The
rules here link such a subject, within its document, to a named entity (a node whose label
starts with a capital letter) when a simple rule decides, and leave it as written otherwise. The
text as written is kept (in Parquet, and as the statement's ``ptoie:subjectText``), and the
statement says which rule linked it (``ptoie:resolvedBy``).

A document's triples are read in order of sentence. For each subject as written:

* **pronoun** (``Ele``, ``Ela``, ``Eles``, ``Elas``): the subject of the nearest earlier sentence
  (at most :data:`PRONOUN_WINDOW` sentences back) that agrees in number and, where both are
  known, in gender. It is linked only when that subject is a named entity (or was itself linked
  to one); a nearer agreeing subject that is a common noun (``O contrato``) blocks the link.
* **apposition** (``A ministra Marina Silva``; ``A fabricante`` of ``A fabricante Embraer tem
  sede em ...``): a noun before a name, in the subject or in its sentence, is that name.
* **description** (``O escritor``, ``A empresa``, ``o clube carioca``: a definite article and one
  to three lower-case words): the most recent earlier named entity that the document describes
  with one of those words (``O Botafogo | é um clube | ...``, ``o escritor José Saramago``,
  ``Saramago, o escritor``) or whose name holds one of them (``O instituto`` -> ``Instituto
  Butantan``), of the same number (a noun's gender is its own: ``A cidade`` is ``O Porto``).
  A description that the document applies to no named entity (``A final``) stays as written.
* **short name** (``Saramago``, ``O Butantan``): a name whose words end a longer name that an
  earlier sentence of the document names, every word before them capitalised (``José Saramago``, ``Instituto
  Butantan``; not ``Banco Central do Brasil`` for ``Brasil``), is that longer name (the shortest
  one; two different ones of that length: left as written).

A named entity's gender and number come from the articles and contractions written before it
(``O Botafogo``, ``da Embraer``), or, for a name of two or more words without one, from its first
word (``Ana`` feminine, ``Francisco``, ``João`` masculine: the endings ``-a``, ``-o``, ``-ão``);
otherwise unknown, which agrees with anything. docs/graph.md gives how often the rules are right
on the annotated documents of ``tests/fixtures/mentions/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal


from ptoie.graph import canonical

Rule = Literal["pronoun", "apposition", "description", "short-name"]
DescriptionFallback = Literal["none", "recent", "topic"]

PRONOUNS = {"ele": ("m", "sg"), "ela": ("f", "sg"), "eles": ("m", "pl"), "elas": ("f", "pl")}
"""Subject pronouns, with gender and number."""
PRONOUN_WINDOW = 3
"""A pronoun's antecedent is the subject of one of this many earlier sentences."""
_DETERMINERS = {
    **dict.fromkeys("o do no pelo ao um dum num".split(), ("m", "sg")),
    **dict.fromkeys("a da na pela à uma duma numa".split(), ("f", "sg")),
    **dict.fromkeys("os dos nos pelos aos uns".split(), ("m", "pl")),
    **dict.fromkeys("as das nas pelas às umas".split(), ("f", "pl")),
}
"""Articles and contractions, with the gender and number of the noun they open."""
_DEFINITE = frozenset("o a os as".split())
_SER = frozenset("é foi era são foram eram será seria".split())
"""Forms of ``ser`` that open a predication (``X | é | um escritor``)."""
_CONNECTORS = canonical.NAME_CONNECTORS
_TOKENS = re.compile(r"[\w-]+|[^\w\s]")

Key = tuple[str, int, int]
"""``(doc_id, sentence_id, extraction_index)`` of a triple."""


@dataclass(frozen=True, slots=True)
class Mention:
    """A subject linked to the entity it refers to: ``entity`` (the antecedent's key and label,
    with the time split off the subject as written), the ``rule`` that linked it."""

    entity: canonical.Entity
    rule: Rule


def _capitalised(word: str) -> bool:
    return word[:1].isupper()


def _person_gender(label: str) -> str | None:
    words = label.split(" ")
    if len(words) < 2 or not all(_capitalised(w) or w in _CONNECTORS - {"e"} for w in words):
        return None
    first = words[0].casefold()
    return "f" if first.endswith("a") else "m" if first.endswith(("o", "ão")) else None


@dataclass(slots=True)
class _Name:
    """A named entity of the document: what the document says of its gender, number and kind."""

    entity: canonical.Entity
    genders: set[str] = field(default_factory=set)
    number: str = "sg"
    nouns: set[str] = field(default_factory=set)
    first: int = 0
    """Sentence of its first mention."""

    def features(self) -> tuple[str | None, str]:
        if len(self.genders) == 1:
            return next(iter(self.genders)), self.number
        return (_person_gender(self.entity.label) if not self.genders else None), self.number


@lru_cache(maxsize=1 << 16)
def _read(surface: str, second: bool) -> tuple[canonical.Entity | canonical.Value,
                                               tuple[str, canonical.Entity] | None, bool,
                                               tuple[str, str] | None]:
    """An argument's term, the noun and name it is written as (``ministra Marina Silva``),
    whether it is a name, and the gender and number of the article written before the name."""
    term = canonical.argument(surface) if second else canonical.subject(surface)
    if not isinstance(term, canonical.Entity):
        return term, None, False, None
    apposed = apposed_name(term.label)
    noun_name = (apposed[0], canonical.Entity(canonical.fold(apposed[1]), apposed[1])
                 ) if apposed else None
    first = term.label.split(" ")[0]
    opening, *rest = canonical.tidy(surface).casefold().split(" ")
    features = _DETERMINERS.get(opening) if rest[:1] == [first.casefold()] else None
    return term, noun_name, _capitalised(first) and first.casefold() not in PRONOUNS, features


class _Document:
    """The named entities of one document's triples and sentences (keys of its short names
    mapped to their longer names)."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.names: dict[str, _Name] = {}
        for r in rows:
            for surface, second in ((r["arg1"], False), (r["arg2"], True)):
                self._add(surface, second, r["sentence_id"])
        by_last: dict[str, list[_Name]] = {}
        for name in self.names.values():
            by_last.setdefault(name.entity.label.rsplit(" ", 1)[-1], []).append(name)
        self.alias = {key: long for key in self.names if (long := self._longer(key, by_last))}
        for r in rows:
            self._predication(r)
        for sentence in dict.fromkeys(r["sentence"] for r in rows):
            for noun, name in appositions(sentence):
                if (known := self.name(canonical.subject(name).key)) is not None:
                    known.nouns.add(noun)

    def _add(self, surface: str, second: bool, sentence_id: int) -> None:
        term, apposed, named, features = _read(surface, second)
        if apposed is not None:
            self._name(apposed[1], sentence_id).nouns.add(apposed[0])
        if named:
            name = self._name(term, sentence_id)  # type: ignore[arg-type]
            name.nouns.update(w.casefold() for w in term.label.split(" "))  # type: ignore[union-attr]
            if features is not None:
                name.genders.add(features[0])
                name.number = features[1]

    def _name(self, entity: canonical.Entity, sentence_id: int) -> _Name:
        name = self.names.setdefault(entity.key, _Name(entity, first=sentence_id))
        name.first = min(name.first, sentence_id)
        return name

    def _longer(self, key: str, by_last: dict[str, list[_Name]]) -> str | None:
        """The key of the shortest longer name, named first, that ``key``'s name ends (see the
        module doc); ``by_last``: the names by their last word."""
        short = self.names[key]
        words = short.entity.label.split(" ")
        found: list[list[str]] = []
        for name in by_last[words[-1]]:
            other, long = name.entity.key, name.entity.label.split(" ")
            if (other != key and len(long) > len(words) and long[-len(words):] == words
                    and name.first < short.first
                    and all(_capitalised(w) for w in long[:-len(words)])):
                found.append(long)
        if not found:
            return None
        shortest = min(len(f) for f in found)
        keys = {canonical.fold(" ".join(f)) for f in found if len(f) == shortest}
        return keys.pop() if len(keys) == 1 else None

    def name(self, key: str) -> _Name | None:
        return self.names.get(self.alias.get(key, key))

    def _predication(self, r: Mapping[str, Any]) -> None:
        """``X | é | um escritor``, ``X | é um clube | do Rio``: the nouns said of a name."""
        name = self.name(canonical.subject(r["arg1"]).key)
        rel = r["rel"].split(" ")
        if name is None or rel[0].casefold() not in _SER:
            return
        words = rel[1:] + r["arg2"].split(" ")
        words = [w for w in words if w.casefold() not in _DETERMINERS]
        for word in words[:3]:
            if not _is_noun(word):
                break
            name.nouns.add(word)


def appositions(sentence: str) -> Iterator[tuple[str, str]]:
    """``(noun, name)`` of each apposition in ``sentence``: a definite or indefinite article and
    one lower-case word next to a name, ``o escritor José Saramago`` or ``José Saramago, o
    escritor`` -> ``('escritor', 'José Saramago')``. One word only: ``o presidente visitou
    Lisboa`` is no apposition; a name after a preposition (``Em Lisboa, o presidente``) neither."""
    tokens = _TOKENS.findall(sentence)
    for i, token in enumerate(tokens[:-1]):
        noun = tokens[i + 1]
        if token.casefold() not in _DETERMINERS or not _is_noun(noun):
            continue
        after = _name_at(tokens, i + 2)
        if after:
            yield noun, after
        if i >= 2 and tokens[i - 1] == ",":
            before = _name_before(tokens, i - 1)
            opener = before.split(" ")[0].casefold() if before else ""
            if before and not (opener in canonical.PREPOSITIONS or opener in canonical.CONTRACTIONS):
                yield noun, before


def _is_noun(token: str) -> bool:
    """A lower-case word that is no preposition (``escritor``, ``primeiro-ministro``)."""
    return (token.replace("-", "").isalpha() and token.islower() and token not in _CONNECTORS
            and token not in canonical.CONTRACTIONS and token not in canonical.PREPOSITIONS)


def apposed_name(label: str) -> tuple[str, str] | None:
    """``(noun, name)`` of an entity label written as a noun and a name (``ministra Marina
    Silva`` of ``A ministra Marina Silva``), None for any other label."""
    noun, _, name = label.partition(" ")
    if _is_noun(noun) and _capitalised(name) and all(_capitalised(w) or w in _CONNECTORS
                                       for w in name.split(" ")):
        return noun, name
    return None


def _name_at(tokens: list[str], start: int) -> str | None:
    """The name that starts at ``tokens[start]`` (capitalised words, with connectors)."""
    end = start
    while end < len(tokens) and (_capitalised(tokens[end]) or (
            tokens[end] in _CONNECTORS and end + 1 < len(tokens) and end > start
            and _capitalised(tokens[end + 1]))):
        end += 1
    return " ".join(tokens[start:end]) or None


def _name_before(tokens: list[str], stop: int) -> str | None:
    """The name that ends at ``tokens[stop - 1]`` (the comma is ``tokens[stop]``)."""
    start = stop
    while start > 0 and (_capitalised(tokens[start - 1]) or (
            tokens[start - 1] in _CONNECTORS and start - 2 >= 0
            and _capitalised(tokens[start - 2]) and start < stop)):
        start -= 1
    return " ".join(tokens[start:stop]) or None


# -- the rules ------------------------------------------------------------------------------------
@lru_cache(maxsize=1 << 16)
def description_of(surface: str) -> tuple[tuple[str, str], tuple[str, ...]] | None:
    """Gender/number and words of a bare definite description (``O clube carioca``)."""
    words = canonical.tidy(surface).split(" ")
    if len(words) < 2 or len(words) > 4 or words[0].casefold() not in _DEFINITE:
        return None
    rest = words[1:]
    if not all(_is_noun(w) for w in rest):
        return None
    return _DETERMINERS[words[0].casefold()], tuple(rest)


@dataclass(slots=True)
class _Subject:
    """A subject of an earlier sentence: its entity key (linked, when it was), and features."""

    sentence_id: int
    key: str
    named: bool
    features: tuple[str | None, str]


def resolve_document(rows: Sequence[Mapping[str, Any]], *,
                     description_fallback: DescriptionFallback = "none"
                     ) -> dict[tuple[int, int], Mention]:
    """The mentions of one document's triples (records with ``sentence_id``,
    ``extraction_index``, ``arg1``, ``rel``, ``arg2``, ``sentence``), by ``(sentence_id,
    extraction_index)``. ``description_fallback``: what a description that the document applies
    to no named entity refers to: nothing (``none``, the rule of the module doc), the most recent
    agreeing named subject (``recent``) or the document's first agreeing named subject
    (``topic``); the last two are measured in docs/graph.md, not used by the graph stage."""
    rows = sorted(rows, key=lambda r: (r["sentence_id"], r["extraction_index"]))
    document = _Document(rows)
    found: dict[tuple[int, int], Mention] = {}
    subjects: list[_Subject] = []
    for r in rows:
        written = canonical.subject(r["arg1"])
        mention = _resolve(r, written, document, subjects, description_fallback)
        if mention is not None:
            found[(r["sentence_id"], r["extraction_index"])] = mention
        subjects.append(_subject_of(r, mention, written, document))
    return found


def _subject_of(r: Mapping[str, Any], mention: Mention | None, written: canonical.Entity,
                document: _Document) -> _Subject:
    key = mention.entity.key if mention is not None else written.key
    name = document.name(key)
    opening = canonical.tidy(r["arg1"]).split(" ")[0].casefold()
    features = (name.features() if name is not None
                else PRONOUNS.get(opening) or _DETERMINERS.get(opening, (None, "sg")))
    return _Subject(r["sentence_id"], key, name is not None, features)


def _resolve(r: Mapping[str, Any], written: canonical.Entity, document: _Document,
             subjects: list[_Subject], fallback: DescriptionFallback) -> Mention | None:
    sentence_id = r["sentence_id"]
    pronoun = PRONOUNS.get(written.label.casefold())
    if pronoun is not None:
        return _pronoun(pronoun, sentence_id, written, document, subjects)
    apposed = apposed_name(written.label)
    if apposed is not None:
        name = document.name(canonical.fold(apposed[1]))
        return _linked(name, written, "apposition") if name is not None else None
    description = description_of(r["arg1"])
    if description is not None:
        return _described(r, description, written, document, subjects, fallback)
    long = document.alias.get(written.key)
    if long is not None:
        return _linked(document.names[long], written, "short-name")
    return None


def _linked(name: _Name, written: canonical.Entity, rule: Rule) -> Mention:
    entity = name.entity
    return Mention(canonical.Entity(entity.key, entity.label, None, written.time), rule)


def _pronoun(features: tuple[str, str], sentence_id: int, written: canonical.Entity,
             document: _Document, subjects: list[_Subject]) -> Mention | None:
    for subject in reversed(subjects):
        if subject.sentence_id >= sentence_id:
            continue
        if sentence_id - subject.sentence_id > PRONOUN_WINDOW:
            return None
        if subject.features[1] == features[1] and subject.features[0] in (features[0], None):
            name = document.name(subject.key) if subject.named else None
            return _linked(name, written, "pronoun") if name is not None else None
    return None


def _described(r: Mapping[str, Any], description: tuple[tuple[str, str], tuple[str, ...]],
               written: canonical.Entity, document: _Document, subjects: list[_Subject],
               fallback: DescriptionFallback) -> Mention | None:
    features, words = description
    sentence_id = r["sentence_id"]
    tokens = _TOKENS.findall(r["sentence"])
    lowered = [t.casefold() for t in tokens]
    written_tokens = [t.casefold() for t in _TOKENS.findall(canonical.tidy(r["arg1"]))]
    for i in range(len(tokens) - len(written_tokens) + 1):
        if lowered[i:i + len(written_tokens)] == written_tokens:
            name = _name_at(tokens, i + len(written_tokens))
            known = document.name(canonical.subject(name).key) if name else None
            if known is not None:
                return _linked(known, written, "apposition")
    number = features[1]  # a noun's gender is its own: ``A cidade`` is ``O Porto``
    earlier = sorted((n for key, n in document.names.items() if key not in document.alias
                      and n.first < sentence_id and n.number == number), key=lambda n: n.first)
    matching = [n for n in earlier if n.nouns & set(words)]
    if matching:
        return _linked(_most_recent(matching, subjects, document), written, "description")
    named = [s for s in subjects if s.named and s.sentence_id < sentence_id
             and s.features[1] == number]
    if fallback == "none" or not named:
        return None
    subject = named[-1] if fallback == "recent" else named[0]
    return _linked(document.name(subject.key), written, "description")  # type: ignore[arg-type]


def _most_recent(names: list[_Name], subjects: list[_Subject], document: _Document) -> _Name:
    """Of ``names``, the one last seen as a subject (else the last one first named)."""
    keys = {id(n): n for n in names}
    for subject in reversed(subjects):
        name = document.name(subject.key)
        if name is not None and id(name) in keys:
            return name
    return names[-1]
