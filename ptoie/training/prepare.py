"""TransAlign span-tagged CoNLL -> ChatML training JSONL: one record per sentence, ALL its triples.

The same sentence appears in several extraction blocks, often in several files (TransAlign's CaRB,
dev and LSOIE files overlap), sometimes tokenised or capitalised a little differently (``e/ou`` and
``e / ou``, ``Títulos`` and ``títulos``). :func:`prepare` groups every block of a sentence across
every file under :func:`sentence_group_key` (the scorer's sentence key, case-folded), so that its
answer holds every extraction the corpus gives it: deduplicated (:func:`triple_key`) and in reading
order (position of the relation in the sentence, then of arg1 and arg2; ties keep corpus order).

Records are rendered by :mod:`ptoie.extract.prompt` (the module the extractor uses at inference), carry
the surface form of the sentence and of the triples (contractions re-joined the same way,
punctuation attached), are validated against ``schemas/training_record.schema.json`` and split
into train/validation *by sentence* with a fixed seed. The split is drawn over the sentences as
read (exact tokens, first-seen order) exactly as before grouping existed, so the validation split
holds the same sentences whatever the grouping; a group with one member in the validation split
goes to validation whole, so no near-duplicate of a validation sentence is trained on.

Optional compounds (``compounds > 0``) teach the model to go on after the first fact: two training
sentences joined into one input (``S1 S2`` or ``S1; S2``, :func:`join_compound`) whose answer is
the triples of both, in order. TransAlign gives two or more triples for only 8 % of its sentences,
so without them the model learns to stop after one. Validation compounds are made from the
validation sentences only (``validation_compounds``), to measure that behaviour apart.

Optional negatives (``negatives > 0``) teach the ``nenhuma`` answer without any outside data: an
argument span of a TransAlign extraction that states no fact on its own (a verbless noun phrase,
:func:`negative_candidates`) becomes a record whose answer is ``nenhuma``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema

from ptoie.extract.prompt import build_messages
from ptoie.schema import training_record_schema
from ptoie.text.tokens import join_contractions, letters_and_digits
from ptoie.training.conll import BadBlock, TaggedSentence, read_conll

_NO_SPACE_BEFORE = re.compile(r"\s+([,.;:!?%)\]}])")
_NO_SPACE_AFTER = re.compile(r"([(\[{])\s+")

Tokens = Sequence[str]
Extraction = tuple[Tokens, Tokens, Tokens]


def detokenize(tokens: Tokens) -> str:
    """Surface text of split tokens: contractions re-joined, no space before ``, . ; : ! ? ) ] }``
    nor after ``( [ {``."""
    text = " ".join(join_contractions(list(tokens)))
    text = _NO_SPACE_BEFORE.sub(r"\1", text)
    return _NO_SPACE_AFTER.sub(r"\1", text)


def sentence_group_key(text: str) -> str:
    """Key under which blocks are one sentence: its letters, marks and digits (the scorer's
    :func:`ptoie.evaluation.matchers.sentence_key`), case-folded."""
    return letters_and_digits(text).casefold()


def triple_key(triple: Sequence[str]) -> tuple[str, ...]:
    """Two triples are the same extraction when every part has the same letters and digits, case aside."""
    return tuple(letters_and_digits(part).casefold() for part in triple)


def _occurrences(tokens: Tokens, part: Tokens) -> list[int]:
    n = len(part)
    return [i for i in range(len(tokens) - n + 1) if list(tokens[i:i + n]) == list(part)] if n else []


def extraction_position(tokens: Tokens, extraction: Extraction) -> tuple[float, float, float]:
    """Reading-order key of an extraction in its sentence: token index of the relation, then of
    arg1 and arg2 (``inf`` when a part is not a token sequence of the sentence). A relation that
    occurs several times is taken at its first occurrence after the start of arg1, if any."""
    arg1, rel, arg2 = extraction
    inf = float("inf")
    a1 = _occurrences(tokens, arg1)
    a2 = _occurrences(tokens, arg2)
    r = _occurrences(tokens, rel)
    a1_pos = a1[0] if a1 else inf
    r_pos = next((i for i in r if i >= a1_pos), r[0]) if r else inf
    return float(r_pos), float(a1_pos), float(a2[0] if a2 else inf)


# --- negatives ------------------------------------------------------------------------------------

_FUNCTION_WORDS = frozenset("""
o a os as um uma uns umas de em por para com sem sob sobre entre até desde ante após contra perante
do da dos das no na nos nas ao aos à às pelo pela pelos pelas num numa nuns numas dum duma
e ou mas nem também não já ainda só apenas muito mais menos bem mal quase cerca tão como
se lhe lhes me te nos vos ele ela eles elas isso isto aquilo
seu sua seus suas meu minha meus minhas nosso nossa nossos nossas este esta estes estas
esse essa esses essas aquele aquela aqueles aquelas todo toda todos todas outro outra outros outras
""".split())
# "a" is left out of the prepositions: at the start of an argument it is far more often the article.
_PREPOSITIONS = frozenset("""
de em por para com sem sob sobre entre até desde ante após contra perante à às ao aos
do da dos das no na nos nas pelo pela pelos pelas num numa dum duma
""".split())
_CLAUSE_WORDS = frozenset("""
que quando onde porque quem qual quais cujo cuja cujos cujas enquanto embora se caso como
""".split())
_VERB_ENDING = re.compile(r"(ndo|aram|eram|iram|ava|avam|ou|ar|er|ir)$")
_NEGATIVE_MIN_TOKENS, _NEGATIVE_MAX_TOKENS = 3, 12


def verb_lexicon(sentences: Iterable[TaggedSentence]) -> frozenset[str]:
    """Every content word (case-folded) that occurs in a relation span of the corpus."""
    words = set()
    for sentence in sentences:
        for _, rel, _ in sentence.extractions:
            words.update(t.casefold() for t in rel if t.isalpha() and t.casefold() not in _FUNCTION_WORDS)
    return frozenset(words)


def is_verbless_phrase(tokens: Tokens, verbs: frozenset[str]) -> bool:
    """Whether an argument span can stand as a sentence stating no fact: 3 to 12 tokens, no word of
    the corpus' relations (``verbs``), no word with a verb ending (gerund, past, infinitive), no
    clause word (``que``, ``quando`` ...), no punctuation, neither starting nor ending with a
    preposition, nor ending with a function word. Deliberately strict: a missed candidate costs
    nothing, a clause taught as ``nenhuma`` would teach the model to drop facts."""
    if not _NEGATIVE_MIN_TOKENS <= len(tokens) <= _NEGATIVE_MAX_TOKENS:
        return False
    folded = [t.casefold() for t in tokens]
    if folded[0] in _PREPOSITIONS or folded[-1] in _FUNCTION_WORDS:
        return False
    for word in folded:
        if not any(ch.isalnum() for ch in word) or not all(ch.isalnum() or ch in "-.'" for ch in word):
            return False
        if word in verbs or word in _CLAUSE_WORDS:
            return False
        if word.isalpha() and word not in _FUNCTION_WORDS and _VERB_ENDING.search(word):
            return False
    return True


def negative_candidates(members: Iterable[TaggedSentence], verbs: frozenset[str]) -> list[str]:
    """Surface texts of the verbless argument spans (arg1, then arg2, of every extraction) of a
    sentence's blocks, each once, in corpus order."""
    seen: dict[str, str] = {}
    for member in members:
        for arg1, _, arg2 in member.extractions:
            for part in (arg1, arg2):
                if is_verbless_phrase(part, verbs):
                    text = detokenize(part)
                    seen.setdefault(sentence_group_key(text), text)
    return list(seen.values())


# --- grouping -------------------------------------------------------------------------------------

@dataclass(slots=True)
class SentenceGroup:
    """Every block of one sentence, across files: the record it becomes."""

    key: str
    sentence: str
    """Surface text of the first block read (the record's sentence)."""
    source: str
    index: int
    """Read-order index of the first block's sentence (the record id's number)."""
    members: list[TaggedSentence] = field(default_factory=list)
    validation: bool = False

    def triples(self) -> list[list[str]]:
        """All extractions of the members, deduplicated (:func:`triple_key`, first kept), in
        reading order (:func:`extraction_position` in the member they come from)."""
        found: dict[tuple[str, ...], tuple[tuple[float, float, float], int, list[str]]] = {}
        for member in self.members:
            for extraction in member.extractions:
                triple = [detokenize(part) for part in extraction]
                key = triple_key(triple)
                if key not in found:
                    found[key] = (extraction_position(member.tokens, extraction), len(found), triple)
        return [triple for _, _, triple in sorted(found.values(), key=lambda v: (v[0], v[1]))]


def group_sentences(sentences: Sequence[TaggedSentence], validation_ids: set[int] | None = None
                    ) -> list[SentenceGroup]:
    """Group sentences (as read) under :func:`sentence_group_key`, in first-seen order; a group is
    in the validation split when any of its members' read-order indices is in ``validation_ids``."""
    groups: dict[str, SentenceGroup] = {}
    for index, tagged in enumerate(sentences):
        text = detokenize(tagged.tokens)
        key = sentence_group_key(text)
        group = groups.get(key)
        if group is None:
            group = groups[key] = SentenceGroup(key=key, sentence=text, source=tagged.source, index=index)
        group.members.append(tagged)
        if validation_ids and index in validation_ids:
            group.validation = True
    return list(groups.values())


@dataclass(slots=True)
class PreparedData:
    """Result of :func:`prepare`: records per split and what was skipped."""

    train: list[dict] = field(default_factory=list)
    validation: list[dict] = field(default_factory=list)
    validation_compounds: list[dict] = field(default_factory=list)
    """Pairs of validation sentences joined by :func:`join_compound` (kept out of ``validation``,
    scored apart: how many of the facts of a two-sentence input are found)."""
    validation_negatives: list[dict] = field(default_factory=list)
    """Negatives made from validation sentences (kept out of ``validation``, whose loss and gold
    stay comparable with earlier runs; scored apart to measure the ``nenhuma`` rate)."""
    bad_blocks: list[BadBlock] = field(default_factory=list)
    n_blocks: int = 0
    duplicate_blocks: int = 0
    sentences_read: int = 0
    """Sentences as read (exact tokens) before grouping."""

    def summary(self) -> dict[str, int]:
        """Counts for the log and the report."""
        def per_sentence(records: list[dict]) -> dict[str, int]:
            counts = {"0": 0, "1": 0, "2": 0, "3+": 0}
            for r in records:
                n = len(r["triples"])
                counts["3+" if n >= 3 else str(n)] += 1
            return counts
        train_negatives = sum(1 for r in self.train if not r["triples"])
        train_compounds = sum(1 for r in self.train if r["id"].endswith("-cmp"))
        return {
            "blocks": self.n_blocks,
            "bad_blocks": len(self.bad_blocks),
            "duplicate_blocks": self.duplicate_blocks,
            "sentences_read": self.sentences_read,
            "train_sentences": len(self.train) - train_negatives - train_compounds,
            "train_negatives": train_negatives,
            "train_compounds": train_compounds,
            "validation_compounds": len(self.validation_compounds),
            "validation_sentences": len(self.validation),
            "validation_negatives": len(self.validation_negatives),
            "train_triples": sum(len(r["triples"]) for r in self.train),
            "validation_triples": sum(len(r["triples"]) for r in self.validation),
            "train_triples_per_sentence": per_sentence(self.train),
            "validation_triples_per_sentence": per_sentence(self.validation),
        }


def _record(record_id: str, source: str, sentence: str, triples: list[list[str]], validator) -> dict:
    record = {
        "id": record_id,
        "source": source,
        "sentence": sentence,
        "triples": triples,
        "messages": build_messages(sentence, triples),
    }
    errors = sorted(validator.iter_errors(record), key=str)
    if errors:
        raise ValueError(f"{source}: record {record_id} does not match training_record.schema.json: "
                         f"{errors[0].message}")
    return record


_COMPOUND_MAX_WORDS = 60


def join_compound(first: str, second: str, semicolon: bool) -> str:
    """One input made of two sentences: ``first second`` (two sentences in a row, as a text whose
    splitting failed) or, with ``semicolon``, ``first; second`` (its final ``.`` ``!`` ``?``
    replaced). The words of both stay as written, so their triples stay spans of the input."""
    if semicolon:
        return f"{first.rstrip().rstrip('.!?').rstrip()}; {second.strip()}"
    return f"{first.rstrip()} {second.strip()}"


def compound_records(records: Sequence[dict], n: int, rng: random.Random, validator,
                     max_words: int = _COMPOUND_MAX_WORDS) -> list[dict]:
    """Up to ``n`` records each joining two distinct positive ``records`` (drawn with ``rng``, each
    record used at most once, inputs of at most ``max_words`` words); the answer holds the first
    sentence's triples, then the second's."""
    pool = [r for r in records if r["triples"]]
    rng.shuffle(pool)
    out: list[dict] = []
    i = 0
    while len(out) < n and i + 1 < len(pool):
        first, second = pool[i], pool[i + 1]
        i += 2
        if len(first["sentence"].split()) + len(second["sentence"].split()) > max_words:
            continue
        text = join_compound(first["sentence"], second["sentence"], semicolon=rng.random() < 0.5)
        out.append(_record(f"{first['id']}+{second['id']}-cmp", first["source"], text,
                           first["triples"] + second["triples"], validator))
    return out


def prepare(sources: Iterable[Path | str], *, validation_fraction: float = 0.01, seed: int = 13,
            negatives: float = 0.0, compounds: float = 0.0) -> PreparedData:
    """Read ``sources`` (CoNLL files), build one schema-valid record per sentence, split by sentence.

    ``validation_fraction`` of the sentences as read (at least one when there are two or more) go to
    the validation split, drawn with ``random.Random(seed)``: the same inputs give the same split,
    grouping or not. ``negatives``: ``nenhuma`` records added to the training split, as a fraction
    of its sentences (at most one per sentence, drawn with ``seed``); every validation sentence with
    a candidate gives one validation negative (``validation_negatives``) whatever ``negatives`` is.
    ``compounds``: two-sentence records (:func:`compound_records`) added to the training split, as a
    fraction of its sentences, drawn with ``seed`` after the negatives; the validation sentences
    always give ``validation_compounds`` (pairs of validation sentences only).
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    if not 0.0 <= negatives <= 1.0:
        raise ValueError(f"negatives must be in [0, 1], got {negatives}")
    if not 0.0 <= compounds <= 1.0:
        raise ValueError(f"compounds must be in [0, 1], got {compounds}")
    data = read_conll(list(sources))
    validator = jsonschema.Draft202012Validator(training_record_schema())
    n_read = len(data.sentences)
    n_val = round(n_read * validation_fraction)
    if validation_fraction > 0 and n_val == 0 and n_read >= 2:
        n_val = 1
    order = list(range(n_read))
    random.Random(seed).shuffle(order)
    groups = group_sentences(data.sentences, set(order[:n_val]))

    prepared = PreparedData(bad_blocks=data.bad_blocks, n_blocks=data.n_blocks,
                            duplicate_blocks=data.duplicate_blocks, sentences_read=n_read)
    for group in groups:
        record = _record(_group_id(group), group.source, group.sentence, group.triples(), validator)
        (prepared.validation if group.validation else prepared.train).append(record)
    _add_negatives(prepared, groups, verb_lexicon(data.sentences), negatives, random.Random(seed),
                   validator)
    # Drawn after the negatives, from their own generator: adding compounds leaves every other
    # record as it was without them.
    compound_rng = random.Random(f"{seed}-compounds")
    n_train = sum(1 for r in prepared.train if r["triples"])
    prepared.train.extend(compound_records(prepared.train, round(compounds * n_train), compound_rng, validator))
    prepared.validation_compounds = compound_records(prepared.validation, len(prepared.validation),
                                                     compound_rng, validator)
    return prepared


def _group_id(group: SentenceGroup) -> str:
    """Record id of a sentence group: ``<source file stem>-<read-order index>``."""
    return f"{Path(group.source).stem}-{group.index:05d}"


def _add_negatives(prepared: PreparedData, groups: Sequence[SentenceGroup], verbs: frozenset[str],
                   negatives: float, rng: random.Random, validator) -> None:
    """``nenhuma`` records: one per validation group with a candidate (``validation_negatives``),
    and ``negatives`` x the training records drawn from the training groups (``train``). A text
    is used once, and never both as a validation and a training negative."""
    positives = {g.key for g in groups}
    train_pool: list[tuple[SentenceGroup, str]] = []
    taken: set[str] = set()
    for group in groups:
        candidates = [c for c in negative_candidates(group.members, verbs)
                      if sentence_group_key(c) not in positives]
        if not candidates:
            continue
        if group.validation:
            text = rng.choice(candidates)
            if sentence_group_key(text) not in taken:
                taken.add(sentence_group_key(text))
                prepared.validation_negatives.append(_record(
                    f"{_group_id(group)}-neg", group.source, text, [], validator))
        else:
            train_pool.append((group, rng.choice(candidates)))
    # A negative whose text is also a validation negative stays out of training (no leak either way).
    train_pool = [(g, t) for g, t in train_pool if sentence_group_key(t) not in taken]
    n_negatives = min(len(train_pool), round(negatives * len(prepared.train)))
    for i in sorted(rng.sample(range(len(train_pool)), n_negatives)):
        group, text = train_pool[i]
        if sentence_group_key(text) in taken:
            continue
        taken.add(sentence_group_key(text))
        prepared.train.append(_record(f"{_group_id(group)}-neg", group.source, text, [], validator))


def split_path(out: Path, split: str) -> Path:
    """Where a split beside the training file ``out`` is written: ``data.jsonl`` ->
    ``data.val.jsonl`` (``split="val"``, the validation split), ``data.val.neg.jsonl``
    (``"val.neg"``, the validation negatives), ``data.val.cmp.jsonl`` (``"val.cmp"``, the
    validation compounds)."""
    return out.with_name(f"{out.stem}.{split}{out.suffix or '.jsonl'}")


def write_jsonl(records: Iterable[dict], path: Path) -> None:
    """One JSON object per line, UTF-8."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_jsonl(path: Path | str) -> list[dict]:
    """Records of a JSONL file; a bad line raises naming the file and line."""
    records = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
    return records

