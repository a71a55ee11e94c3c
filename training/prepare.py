"""TransAlign span-tagged CoNLL -> ChatML training JSONL (one record per sentence, all its triples).

Records are rendered by :mod:`ptoie.prompt` (the module the extractor uses at inference), carry
the surface form of the sentence and of the triples (contractions re-joined the same way,
punctuation attached), are validated against ``schemas/training_record.schema.json`` and split
into train/validation *by sentence* with a fixed seed.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


from ptoie.conll import BadBlock, read_conll
from ptoie.prompt import build_messages
from ptoie.schema import training_record_schema
from ptoie.text import join_contractions

_NO_SPACE_BEFORE = re.compile(r"\s+([,.;:!?%)\]}])")
_NO_SPACE_AFTER = re.compile(r"([(\[{])\s+")


def detokenize(tokens: list[str]) -> str:
    """Surface text of split tokens: contractions re-joined, no space before ``, . ; : ! ? ) ] }``
    nor after ``( [ {``."""
    text = " ".join(join_contractions(tokens))
    text = _NO_SPACE_BEFORE.sub(r"\1", text)
    return _NO_SPACE_AFTER.sub(r"\1", text)


@dataclass(slots=True)
class PreparedData:
    """Result of :func:`prepare`: records per split and what was skipped."""

    train: list[dict] = field(default_factory=list)
    validation: list[dict] = field(default_factory=list)
    bad_blocks: list[BadBlock] = field(default_factory=list)
    n_blocks: int = 0
    duplicate_blocks: int = 0

    def summary(self) -> dict[str, int]:
        """Counts for the log and the report."""
        return {
            "blocks": self.n_blocks,
            "bad_blocks": len(self.bad_blocks),
            "duplicate_blocks": self.duplicate_blocks,
            "train_sentences": len(self.train),
            "validation_sentences": len(self.validation),
            "train_triples": sum(len(r["triples"]) for r in self.train),
            "validation_triples": sum(len(r["triples"]) for r in self.validation),
        }


def prepare(sources: Iterable[Path | str], *, validation_fraction: float = 0.01,
            seed: int = 13) -> PreparedData:
    """Read ``sources`` (CoNLL files), build one schema-valid record per sentence, split by sentence.

    ``validation_fraction`` of the sentences (at least one when there are two or more) go to the
    validation split, drawn with ``random.Random(seed)``: the same inputs give the same split.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    data = read_conll(list(sources))
    import jsonschema  # only `prepare` validates records; training just reads them

    validator = jsonschema.Draft202012Validator(training_record_schema())
    records: list[dict] = []
    for index, tagged in enumerate(data.sentences):
        sentence = detokenize(tagged.tokens)
        triples = [[detokenize(part) for part in extraction] for extraction in tagged.extractions]
        record = {
            "id": f"{Path(tagged.source).stem}-{index:05d}",
            "source": tagged.source,
            "sentence": sentence,
            "triples": triples,
            "messages": build_messages(sentence, triples),
        }
        errors = sorted(validator.iter_errors(record), key=str)
        if errors:
            raise ValueError(f"{tagged.source}:{tagged.line}: record does not match "
                             f"training_record.schema.json: {errors[0].message}")
        records.append(record)
    n_val = round(len(records) * validation_fraction)
    if validation_fraction > 0 and n_val == 0 and len(records) >= 2:
        n_val = 1
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    val_ids = set(order[:n_val])
    return PreparedData(
        train=[r for i, r in enumerate(records) if i not in val_ids],
        validation=[r for i, r in enumerate(records) if i in val_ids],
        bad_blocks=data.bad_blocks, n_blocks=data.n_blocks,
        duplicate_blocks=data.duplicate_blocks,
    )


def validation_path(out: Path) -> Path:
    """``data.jsonl`` -> ``data.val.jsonl``: where the validation split is written."""
    return out.with_name(f"{out.stem}.val{out.suffix or '.jsonl'}")


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
