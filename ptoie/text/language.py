"""Language of a document: which corpus documents the (Portuguese) extractor should see.

:class:`LanguageFilter` identifies a document's language with ``py3langid`` (a maintained fork of
langid.py: a naive Bayes model over byte n-grams, shipped in the wheel, offline) and tells whether
it is one of the accepted languages. It decides only when the evidence is clear, so that short or
odd Portuguese documents are not thrown away:

* the text is the document's first ``SAMPLE_CHARS`` characters (the language of a long document
  shows in its start; the cost stays bounded);
* a document with fewer than ``MIN_LETTERS`` letters is accepted (a title, "Fim.");
* otherwise it is refused when the most probable language is not accepted and its probability
  (normalised over the model's languages) is at least ``MIN_CONFIDENCE``; a close variety of an
  accepted language (``CLOSE_VARIETIES``) counts as accepted.

Speed and accuracy on short documents are measured by ``bench/language.py`` (docs/batch.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

SAMPLE_CHARS = 2000
MIN_LETTERS = 20
MIN_CONFIDENCE = 0.2
CLOSE_VARIETIES = {"pt": frozenset({"gl"})}
"""Languages an accepted language takes with it: Galician is what the model calls a few Portuguese
sentences (3 of 879 TransAlign sentences), and Portuguese extraction reads it as well."""


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    """The most probable language of a text (ISO 639 code) and its probability."""

    language: str
    probability: float


class LanguageFilter:
    """Accepts documents in ``languages`` (ISO 639-1 codes, e.g. ``("pt",)``); see the module doc."""

    def __init__(self, languages: Iterable[str]) -> None:
        self.languages = frozenset(code.strip().lower() for code in languages)
        self._accepted = self.languages.union(*(CLOSE_VARIETIES.get(c, ()) for c in self.languages))

    def guess(self, text: str) -> LanguageGuess:
        language, probability = _identifier().classify(text[:SAMPLE_CHARS])
        return LanguageGuess(str(language), float(probability))

    def refuse(self, text: str) -> LanguageGuess | None:
        """None when the document is accepted; else the language it was found to be in."""
        sample = text[:SAMPLE_CHARS]
        if sum(ch.isalpha() for ch in sample) < MIN_LETTERS:
            return None
        guess = self.guess(sample)
        if guess.language in self._accepted or guess.probability < MIN_CONFIDENCE:
            return None
        return guess


@cache
def _identifier() -> LanguageIdentifier:
    """py3langid's model with normalised probabilities, loaded once per process (0.5 s)."""
    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)
