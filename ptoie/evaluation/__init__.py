"""Evaluation on a gold benchmark (PUD-100 by default): scorer, matchers, report, gate.

``ptoie-eval`` (``ptoie/cli/evaluate.py``) is the command line; docs/evaluation.md explains the
matchers and the normalization with a worked example.
"""

from ptoie.evaluation.benchmark import (BUNDLED_BENCHMARKS, Benchmark, BenchmarkFormatError, GoldSentence, GoldTriple,
                        Prediction, load_benchmark, read_gold_tsv, read_predictions_tsv,
                        write_predictions_tsv)
from ptoie.evaluation.matchers import MATCHERS, NORMALIZATIONS, MatcherName, Normalization
from ptoie.evaluation.run import (EvalOutcome, GateConfig, PredictionRun, evaluate, format_per_sentence,
                  per_sentence, predictions_from_file, run_extractor)
from ptoie.evaluation.scorer import CurvePoint, Scores, score, score_all

__all__ = [
    "BUNDLED_BENCHMARKS", "Benchmark", "BenchmarkFormatError", "CurvePoint", "EvalOutcome",
    "GateConfig", "GoldSentence", "GoldTriple", "MATCHERS", "MatcherName", "NORMALIZATIONS",
    "Normalization", "Prediction", "PredictionRun", "Scores", "evaluate", "format_per_sentence",
    "load_benchmark", "per_sentence",
    "predictions_from_file", "read_gold_tsv", "read_predictions_tsv", "run_extractor", "score",
    "score_all", "write_predictions_tsv",
]
