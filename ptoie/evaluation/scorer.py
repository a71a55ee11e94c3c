"""Benchmark scoring: precision, recall, F1, the PR curve over confidence thresholds, its AUC.

The procedure, for the binary matchers (``lexical``, ``strict``, ``exact``), follows oie-benchmark as
Stanovsky et al. used it in 2018:

1. **Pairing.** A prediction belongs to the benchmark sentence with the same
   :func:`~ptoie.evaluation.matchers.sentence_key` (text without spaces, punctuation and symbols).
   A prediction for a sentence that is not in the benchmark is an error (oie-benchmark silently
   dropped it).
2. **Matching, once, over all predictions.** Per sentence, for each gold triple in file order, the
   first prediction (in prediction order) that is not yet matched and that matches it is taken:
   one-to-one. A prediction left unmatched is a false positive, so a repeated prediction can be a
   hit at most once. Each prediction is thereby labelled hit or miss.
3. **The point.** Precision = hits / predictions; recall = hits / ALL gold triples of the
   benchmark, those of sentences without any prediction included; F1 their harmonic mean. With no
   prediction, precision is 0.
4. **The curve.** One point per distinct confidence ``t``, highest first, scoring the predictions
   with ``confidence >= t`` with the labels of step 2 (so predictions with tied confidence always
   enter together, and no order among them is assumed). Predictions without a confidence rank below
   every number: they enter only at the last point (threshold None), which scores all predictions.
   The last point is therefore always the point of step 3.
5. **AUC.** Trapezoidal area under the curve's points (recall on x, in curve order), starting from
   (recall 0, precision of the first point). oie-benchmark used scikit-learn, which starts from
   (0, 1) and, in 2018, dropped the thresholds below the last hit: its AUC is somewhat larger.
6. **Best threshold.** The curve point with the highest F1; among equal F1 the higher threshold.

Two deviations from oie-benchmark's code, both bug fixes: a gold sentence with no prediction adds
its number of gold triples to the total and to the misses once (the 2018 code added it once per
gold triple), and
predictions of sentences outside the benchmark are an error instead of being dropped.

``carb`` gives graded credit (:func:`~ptoie.evaluation.matchers.carb_credit`) and is scored as CaRB
does, at every threshold afresh: recall = sum over gold triples of the best recall credit among the
kept predictions of its sentence (many-to-one) / all gold triples; precision = the maximum-weight
one-to-one assignment of kept predictions to gold triples of their sentence, weighted by precision
credit (CaRB uses the Hungarian algorithm, we use :func:`networkx.max_weight_matching`) / kept
predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import networkx as nx

from ptoie.evaluation.benchmark import Benchmark, BenchmarkFormatError, Prediction
from ptoie.evaluation.matchers import (BINARY_MATCHERS, MATCHERS, NORMALIZATIONS, MatcherName, Normalization,
                       carb_credit, sentence_key)


@dataclass(frozen=True, slots=True)
class CurvePoint:
    threshold: float | None
    """Predictions with ``confidence >= threshold`` are scored; None = all predictions."""
    n_predictions: int
    precision: float
    recall: float
    f1: float


@dataclass(slots=True)
class Scores:
    matcher: str
    normalization: str
    precision: float
    recall: float
    f1: float
    """Over all predictions (the paper's single point)."""
    auc: float
    best_threshold: float | None
    best_precision: float
    best_recall: float
    best_f1: float
    n_gold: int
    n_predictions: int
    matched_gold: float
    """Gold triples matched (for carb: the summed recall credit)."""
    matched_predictions: float
    """Predictions that matched (for carb: the summed precision credit)."""
    curve: list[CurvePoint] = field(default_factory=list)

    def as_dict(self, *, with_curve: bool = False) -> dict:
        d = asdict(self)
        if not with_curve:
            d.pop("curve")
        return d


def f1_score(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def sentence_of_each_prediction(benchmark: Benchmark, predictions: Sequence[Prediction]) -> list[int]:
    """Index of the benchmark sentence of every prediction (step 1 of the module docstring)."""
    index = {sentence_key(s.text): i for i, s in enumerate(benchmark.sentences)}
    owners = []
    for n, p in enumerate(predictions, start=1):
        i = index.get(sentence_key(p.sentence))
        if i is None:
            raise BenchmarkFormatError(
                f"prediction {n} is for a sentence that is not in benchmark {benchmark.name!r}: "
                f"{p.sentence[:100]!r}")
        owners.append(i)
    return owners


def binary_labels(benchmark: Benchmark, predictions: Sequence[Prediction], owners: Sequence[int], *,
                  matcher: MatcherName, normalization: Normalization) -> list[bool]:
    """Hit (True) or miss of every prediction: one-to-one, gold order, first free match."""
    match = BINARY_MATCHERS[matcher]
    per_sentence: list[list[int]] = [[] for _ in benchmark.sentences]
    for j, i in enumerate(owners):
        per_sentence[i].append(j)
    hits = [False] * len(predictions)
    for sentence, candidates in zip(benchmark.sentences, per_sentence):
        for gold in sentence.triples:
            for j in candidates:
                if not hits[j] and match(gold.parts, predictions[j].parts, normalization):
                    hits[j] = True
                    break
    return hits


def threshold_levels(predictions: Sequence[Prediction]) -> list[float | None]:
    """Distinct confidences, highest first, then None when some prediction has none (or there is
    no prediction at all)."""
    levels: list[float | None] = sorted({p.confidence for p in predictions if p.confidence is not None},
                                        reverse=True)
    if not levels or any(p.confidence is None for p in predictions):
        levels.append(None)
    return levels


def _kept(confidence: float | None, threshold: float | None) -> bool:
    return threshold is None or (confidence is not None and confidence >= threshold)


def _binary_curve(predictions: Sequence[Prediction], hits: Sequence[bool],
                  levels: Sequence[float | None]) -> list[tuple[float | None, int, float, float]]:
    """(threshold, kept, matched gold, matched predictions) per level."""
    rows = []
    for t in levels:
        kept = [h for p, h in zip(predictions, hits) if _kept(p.confidence, t)]
        rows.append((t, len(kept), float(sum(kept)), float(sum(kept))))
    return rows


def _carb_sentence_credit(credits: dict[tuple[int, int], tuple[float, float]], n_gold: int,
                          kept: set[int]) -> tuple[float, float]:
    """(recall credit, precision credit) of one sentence's kept predictions (indices ``kept``)."""
    recall = sum(max((credits[(g, j)][1] for j in kept if (g, j) in credits), default=0.0)
                 for g in range(n_gold))
    graph = nx.Graph()
    for (g, j), (precision_credit, _) in credits.items():
        if j in kept:
            graph.add_edge(("gold", g), ("pred", j), weight=precision_credit)
    matching = nx.max_weight_matching(graph)
    precision = sum(graph.edges[a, b]["weight"] for a, b in matching)
    return recall, precision


def _carb_curve(benchmark: Benchmark, predictions: Sequence[Prediction], owners: Sequence[int],
                normalization: Normalization,
                levels: Sequence[float | None]) -> list[tuple[float | None, int, float, float]]:
    per_sentence: list[list[int]] = [[] for _ in benchmark.sentences]
    for j, i in enumerate(owners):
        per_sentence[i].append(j)
    credits: list[dict[tuple[int, int], tuple[float, float]]] = []
    for sentence, candidates in zip(benchmark.sentences, per_sentence):
        sentence_credits = {}
        for g, gold in enumerate(sentence.triples):
            for j in candidates:
                credit = carb_credit(gold.parts, predictions[j].parts, normalization)
                if credit is not None:
                    sentence_credits[(g, j)] = credit
        credits.append(sentence_credits)

    # Thresholds go down, so each sentence's kept set only grows: recompute a sentence only when
    # it gained predictions.
    recall_by_sentence = [0.0] * len(benchmark.sentences)
    precision_by_sentence = [0.0] * len(benchmark.sentences)
    kept_count = [0] * len(benchmark.sentences)
    rows = []
    for t in levels:
        for i, candidates in enumerate(per_sentence):
            kept = {j for j in candidates if _kept(predictions[j].confidence, t)}
            if len(kept) != kept_count[i]:
                kept_count[i] = len(kept)
                recall_by_sentence[i], precision_by_sentence[i] = _carb_sentence_credit(
                    credits[i], len(benchmark.sentences[i].triples), kept)
        rows.append((t, sum(kept_count), sum(recall_by_sentence), sum(precision_by_sentence)))
    return rows


def area_under_curve(curve: Sequence[CurvePoint]) -> float:
    """Trapezoidal area, recall on x, from (0, precision of the first point) through the points."""
    if not curve:
        return 0.0
    area = 0.0
    prev_recall, prev_precision = 0.0, curve[0].precision
    for point in curve:
        area += (point.recall - prev_recall) * (point.precision + prev_precision) / 2
        prev_recall, prev_precision = point.recall, point.precision
    return area


def score(benchmark: Benchmark, predictions: Sequence[Prediction], *,
          matcher: MatcherName = "lexical", normalization: Normalization = "pt") -> Scores:
    """Score ``predictions`` against ``benchmark`` (procedure in the module docstring)."""
    if matcher not in MATCHERS:
        raise ValueError(f"matcher must be one of {MATCHERS}, got {matcher!r}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    owners = sentence_of_each_prediction(benchmark, predictions)
    levels = threshold_levels(predictions)
    n_gold = benchmark.n_gold
    if matcher == "carb":
        rows = _carb_curve(benchmark, predictions, owners, normalization, levels)
    else:
        hits = binary_labels(benchmark, predictions, owners, matcher=matcher, normalization=normalization)
        rows = _binary_curve(predictions, hits, levels)

    curve = []
    for threshold, n_kept, matched_gold, matched_predictions in rows:
        precision = matched_predictions / n_kept if n_kept else 0.0
        recall = matched_gold / n_gold if n_gold else 0.0
        curve.append(CurvePoint(threshold, n_kept, precision, recall, f1_score(precision, recall)))
    overall = curve[-1]
    best = max(curve, key=lambda c: c.f1)  # max() keeps the first, i.e. highest threshold, of equals
    return Scores(matcher=matcher, normalization=normalization,
                  precision=overall.precision, recall=overall.recall, f1=overall.f1,
                  auc=area_under_curve(curve), best_threshold=best.threshold,
                  best_precision=best.precision, best_recall=best.recall, best_f1=best.f1,
                  n_gold=n_gold, n_predictions=len(predictions),
                  matched_gold=rows[-1][2], matched_predictions=rows[-1][3], curve=curve)


def score_all(benchmark: Benchmark, predictions: Sequence[Prediction]) -> dict[str, Scores]:
    """Every matcher under every normalization, keyed ``"<matcher>/<normalization>"``."""
    return {f"{m}/{n}": score(benchmark, predictions, matcher=m, normalization=n)
            for m in MATCHERS for n in NORMALIZATIONS}
