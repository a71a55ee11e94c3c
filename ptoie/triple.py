"""The triple: what the parser produces and every sink consumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Triple:
    """One ``(arg1, rel, arg2)`` extraction of a sentence.

    Parts are labels as the sentence writes them (:func:`ptoie.extract.parser.parse_answer` with the
    sentence): a part found in the sentence is ``sentence[start:end]`` of its span (``da Formas``,
    ``no Brasil``, not the model's ``de a Formas``; a contraction the model split between two parts,
    ``é membro de | a Formas``, goes whole to the second: ``é membro | da Formas``); a part not
    found is the model's string, with span None.

    ``confidence`` is exp(mean token log-probability) of the answer line that produced it, times
    the model's probability of going on to that line (:func:`ptoie.extract.extractor.line_confidences`;
    None when the model output carried no probabilities). Spans are character offsets of each part in
    the sentence (end exclusive), None when the part does not occur there.
    """

    arg1: str
    rel: str
    arg2: str
    confidence: float | None = None
    arg1_span: Span | None = None
    rel_span: Span | None = None
    arg2_span: Span | None = None

    @property
    def parts(self) -> tuple[str, str, str]:
        return self.arg1, self.rel, self.arg2

    def to_record(self, *, doc_id: str, sentence_id: int, sentence: str,
                  extraction_index: int, model_id: str, doc_url: str | None = None,
                  doc_title: str | None = None) -> dict[str, Any]:
        """A row with exactly the fields of ``schemas/triple.schema.json``."""
        record: dict[str, Any] = {
            "doc_id": doc_id,
            "sentence_id": sentence_id,
            "sentence": sentence,
            "extraction_index": extraction_index,
            "arg1": self.arg1,
            "rel": self.rel,
            "arg2": self.arg2,
            "confidence": self.confidence,
            "model_id": model_id,
            "doc_url": doc_url,
            "doc_title": doc_title,
        }
        for name, span in (("arg1", self.arg1_span), ("rel", self.rel_span), ("arg2", self.arg2_span)):
            record[f"{name}_start"] = span[0] if span else None
            record[f"{name}_end"] = span[1] if span else None
        return record
