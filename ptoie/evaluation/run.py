"""What ``ptoie-eval`` does: get predictions (from a model or a predictions file), score them with
every matcher, write the report directory, and decide the gate.

Report directory:

* ``report.json`` -- the gate's P/R/F1/AUC/best threshold and counts, predictions per sentence
  beside the gold's (mean and how many sentences got 0, 1, 2, 3+), model id, sampling settings,
  seconds, sentences/s, and every matcher x normalization side by side (see docs/evaluation.md);
* ``predictions.tsv`` -- ``sentence<TAB>confidence<TAB>arg1<TAB>rel<TAB>arg2``, one row per
  predicted triple, the sentence exactly as in the gold file (``--predictions`` reads this format);
* ``pr_curve.png`` -- precision/recall curves over confidence thresholds.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ptoie import __version__
from ptoie.evaluation.benchmark import Benchmark, Prediction, read_predictions_tsv, write_predictions_tsv
from ptoie.evaluation.matchers import MATCHERS, NORMALIZATIONS, MatcherName, Normalization
from ptoie.evaluation.scorer import CurvePoint, Scores, score_all, sentence_of_each_prediction


@dataclass(frozen=True, slots=True)
class GateConfig:
    """How the gate scores and what it requires to pass."""

    matcher: MatcherName = "lexical"
    """Matcher of the gate's F1: 'lexical' (Stanovsky et al. 2018), 'strict', 'exact' or 'carb'."""
    normalization: Normalization = "pt"
    """'pt': case-folded, punctuation split off, contractions split (do = de o); 'raw': the 2018
    oie-benchmark's case-sensitive whitespace tokens."""
    min_f1: float | None = None
    """Lowest passing F1 over all predictions; None = no gate (report only, always passes)."""

    def __post_init__(self) -> None:
        if self.matcher not in MATCHERS:
            raise ValueError(f"GateConfig.matcher must be one of {MATCHERS}, got {self.matcher!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"GateConfig.normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}")
        if self.min_f1 is not None and not 0.0 <= self.min_f1 <= 1.0:
            raise ValueError(f"GateConfig.min_f1 must be between 0 and 1, got {self.min_f1}")

    @property
    def key(self) -> str:
        return f"{self.matcher}/{self.normalization}"


@dataclass(slots=True)
class PredictionRun:
    """Predictions of a system on a benchmark, with what produced them and how long it took."""

    predictions: list[Prediction]
    system: dict[str, Any]
    """What produced the predictions: model id, paths, decoding settings; or the predictions file."""
    sampling: dict[str, Any] | None = None
    load_seconds: float | None = None
    seconds: float | None = None
    """Extraction wall time (model loading excluded)."""
    n_sentences: int = 0
    generated_tokens: int | None = None
    rejected_lines: int | None = None
    """Non-empty output lines the parser could not read as a triple."""
    unsupported_triples: int | None = None
    """Triples the extractor's ``require_spans`` dropped."""

    @property
    def model_id(self) -> str | None:
        return self.system.get("model_id")


def run_extractor(extractor: Any, benchmark: Benchmark, *, load_seconds: float | None = None,
                  chunk_size: int = 16, progress: bool = True) -> PredictionRun:
    """Run ``extractor.extract_batch`` over every benchmark sentence, ``chunk_size`` at a time (a
    progress bar on stderr advances per chunk; within a chunk the extractor batches as it likes)."""
    texts = [s.text for s in benchmark.sentences]
    results = []
    start = time.perf_counter()
    with tqdm(total=len(texts), desc="ptoie-eval", unit="sent", disable=not progress) as bar:
        for i in range(0, len(texts), chunk_size):
            chunk = texts[i:i + chunk_size]
            results.extend(extractor.extract_batch(chunk))
            bar.update(len(chunk))
    seconds = time.perf_counter() - start
    predictions = [Prediction(text, t.arg1, t.rel, t.arg2, t.confidence)
                   for text, result in zip(texts, results) for t in result.triples]
    system = {"model_id": extractor.model_id, "model_path": str(extractor.model_path),
              "lora_path": str(extractor.lora_path) if extractor.lora_path else None,
              "lora_merge": extractor.lora_merge, "loaded_path": str(extractor.loaded_path),
              "grammar": extractor.decoding.grammar, "require_spans": extractor.decoding.require_spans,
              "n_parallel": extractor.model.n_parallel}
    sampling = {name: value for name, value in asdict(extractor.decoding).items()
                if name not in ("grammar", "require_spans")}
    return PredictionRun(predictions=predictions, system=system,
                         sampling=sampling, load_seconds=load_seconds,
                         seconds=seconds, n_sentences=len(texts),
                         generated_tokens=sum(r.generated_tokens for r in results),
                         rejected_lines=sum(r.rejected_lines for r in results),
                         unsupported_triples=sum(r.unsupported_triples for r in results))


def predictions_from_file(path: str | os.PathLike[str], benchmark: Benchmark) -> PredictionRun:
    """An existing predictions TSV, checked against ``benchmark`` (unknown sentences are an error)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"predictions file not found: {path}")
    predictions = read_predictions_tsv(path)
    sentence_of_each_prediction(benchmark, predictions)
    return PredictionRun(predictions=predictions,
                         system={"model_id": None, "predictions_file": str(path)},
                         n_sentences=len(benchmark.sentences))


@dataclass(slots=True)
class EvalOutcome:
    gate: Scores
    passed: bool
    report: dict[str, Any]
    out_dir: Path


def _curve_dicts(curve: list[CurvePoint]) -> list[dict[str, Any]]:
    return [{"threshold": c.threshold, "n_predictions": c.n_predictions, "precision": c.precision,
             "recall": c.recall, "f1": c.f1} for c in curve]


PER_SENTENCE_BUCKETS = ("0", "1", "2", "3+")
"""Buckets of the per-sentence distributions: sentences with 0, 1, 2, and 3 or more triples."""


def per_sentence_distribution(counts: list[int]) -> dict[str, Any]:
    """``{"mean": triples per sentence, "sentences": {"0": n, "1": n, "2": n, "3+": n}}`` of the
    number of triples of each sentence (``counts``, one entry per sentence)."""
    buckets = dict.fromkeys(PER_SENTENCE_BUCKETS, 0)
    for n in counts:
        buckets[str(n) if n < 3 else "3+"] += 1
    return {"mean": sum(counts) / len(counts) if counts else 0.0, "sentences": buckets}


def per_sentence(benchmark: Benchmark, predictions: list[Prediction]) -> dict[str, Any]:
    """Predictions per benchmark sentence beside the gold triples per sentence (``report.json``'s
    ``per_sentence``); a sentence the system produced nothing for counts as 0.
    ``without_gold``: of the sentences whose gold is empty, how many got a prediction, and how many
    predictions they got (every one a false positive)."""
    predicted = [0] * len(benchmark.sentences)
    for i in sentence_of_each_prediction(benchmark, predictions):
        predicted[i] += 1
    empty = [n for n, s in zip(predicted, benchmark.sentences) if not s.triples]
    return {"predictions": per_sentence_distribution(predicted),
            "gold": per_sentence_distribution([len(s.triples) for s in benchmark.sentences]),
            "without_gold": {"sentences": len(empty), "with_predictions": sum(1 for n in empty if n),
                             "predictions": sum(empty)}}


def format_per_sentence(stats: dict[str, Any]) -> str:
    """One line: ``predictions mean 1.02 (0: 10, 1: 80, 2: 8, 3+: 2); gold mean 1.36 (...); ...``
    with the predictions made for sentences without gold."""
    def one(d: dict[str, Any]) -> str:
        buckets = ", ".join(f"{k}: {v}" for k, v in d["sentences"].items())
        return f"mean {d['mean']:.2f} ({buckets})"
    empty = stats["without_gold"]
    return (f"per sentence: predictions {one(stats['predictions'])}; "
            f"gold {one(stats['gold'])} (sentences with 0, 1, 2, 3+ triples); "
            f"{empty['predictions']} predictions for {empty['with_predictions']} of the "
            f"{empty['sentences']} sentences without gold")


def build_report(benchmark: Benchmark, run: PredictionRun, *, gate: GateConfig,
                 all_scores: dict[str, Scores]) -> dict[str, Any]:
    """The ``report.json`` content."""
    gate_scores = all_scores[gate.key]
    passed = gate.min_f1 is None or gate_scores.f1 >= gate.min_f1
    sentences_with_predictions = len(set(sentence_of_each_prediction(benchmark, run.predictions)))
    return {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "ptoie_version": __version__,
        "benchmark": benchmark.summary(),
        "model_id": run.model_id,
        "system": run.system,
        "sampling": run.sampling,
        "seconds": run.seconds,
        "load_seconds": run.load_seconds,
        "sentences_per_second": (run.n_sentences / run.seconds) if run.seconds else None,
        "generated_tokens": run.generated_tokens,
        "matcher": gate.matcher,
        "normalization": gate.normalization,
        "precision": gate_scores.precision,
        "recall": gate_scores.recall,
        "f1": gate_scores.f1,
        "auc": gate_scores.auc,
        "best_threshold": gate_scores.best_threshold,
        "best_f1": gate_scores.best_f1,
        "counts": {
            "sentences": len(benchmark.sentences),
            "gold_triples": benchmark.n_gold,
            "predictions": len(run.predictions),
            "sentences_with_predictions": sentences_with_predictions,
            "matched_gold": gate_scores.matched_gold,
            "matched_predictions": gate_scores.matched_predictions,
            "rejected_output_lines": run.rejected_lines,
            "unsupported_triples": run.unsupported_triples,
        },
        "per_sentence": per_sentence(benchmark, run.predictions),
        "gate": {"matcher": gate.matcher, "normalization": gate.normalization,
                 "min_f1": gate.min_f1, "f1": gate_scores.f1, "passed": passed},
        "matchers": {key: s.as_dict() for key, s in all_scores.items()},
        "pr_curve": _curve_dicts(gate_scores.curve),
    }


def plot_pr_curves(all_scores: dict[str, Scores], gate: GateConfig, path: str | os.PathLike[str], *,
                   title: str) -> None:
    """PNG of the PR curves of every matcher under the gate's normalization; the gate's curve bold,
    its best-F1 point marked."""
    import matplotlib  # late: the Agg backend must be chosen before pyplot is imported

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # late: only after matplotlib.use("Agg")

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for key, s in all_scores.items():
        if s.normalization != gate.normalization:
            continue
        is_gate = key == gate.key
        ax.plot([c.recall for c in s.curve], [c.precision for c in s.curve],
                marker="." if is_gate else None, linewidth=2.2 if is_gate else 1.0,
                alpha=1.0 if is_gate else 0.6,
                label=f"{key}: F1 {s.f1:.3f}, AUC {s.auc:.3f}" + (" (gate)" if is_gate else ""))
    gate_scores = all_scores[gate.key]
    ax.plot([gate_scores.best_recall], [gate_scores.best_precision], "k*", markersize=11,
            label=f"best F1 {gate_scores.best_f1:.3f} at threshold {_fmt(gate_scores.best_threshold)}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fmt(threshold: float | None) -> str:
    return "none (all predictions)" if threshold is None else f"{threshold:.3f}"


def evaluate(benchmark: Benchmark, run: PredictionRun, *, gate: GateConfig,
             out_dir: str | os.PathLike[str]) -> EvalOutcome:
    """Score ``run``; write ``predictions.tsv``, ``report.json`` and ``pr_curve.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    owners = sentence_of_each_prediction(benchmark, run.predictions)
    as_in_gold = [replace(p, sentence=benchmark.sentences[i].text) for p, i in zip(run.predictions, owners)]
    all_scores = score_all(benchmark, run.predictions)
    report = build_report(benchmark, run, gate=gate, all_scores=all_scores)
    write_predictions_tsv(as_in_gold, out / "predictions.tsv")
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    plot_pr_curves(all_scores, gate, out / "pr_curve.png",
                   title=f"{benchmark.name} ({len(benchmark.sentences)} sentences, "
                         f"{benchmark.n_gold} gold): {run.model_id or run.system.get('predictions_file')}")
    return EvalOutcome(gate=all_scores[gate.key], passed=report["gate"]["passed"], report=report,
                       out_dir=out)
