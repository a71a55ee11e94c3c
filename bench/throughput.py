"""CPU throughput of ptoie's extractor against a naive llama-cpp-python loop.

A script, not a test. Every figure it prints is a ratio or rate measured in ONE run with the arms
interleaved: the sentences are cut into chunks and each chunk goes through every arm in turn (the
arm that starts rotates), so load from other processes on a shared machine hits all arms alike.

    python bench/throughput.py compare                       # (a) naive loop vs (b) Extractor, 200 sentences
    python bench/throughput.py sweep --arms np1:n_parallel=1 np8:n_parallel=8 --sentences 64
    python bench/throughput.py builds --build avx2= --build avx512=/work/scratch/avx512/site \\
        --arms ptoie: --sentences 64                          # same arm under two llama.cpp builds

Corpus (``--sentences N``, deduplicated): PUD-100's 100 sentences first
(``load_benchmark("pud100")``), then sentences of the TransAlign CoNLL files (training data, used
here for speed only, never for quality: ``read_conll`` over ``carb.conll``, ``dev.conll``,
``ls_dev.conll`` ... in /work/shared/data/transalign or ../shared/data/transalign), tokens joined
by spaces.

Arms (``LABEL:key=value,...``): ``kind=naive`` is one ``llama_cpp.Llama.create_chat_completion``
per sentence (messages from ``ptoie.extract.prompt.build_messages``, greedy); ``kind=ptoie`` (default) is
``ptoie.Extractor.extract_batch`` on the chunk, greedy. Keys: ``model`` (path or
``embedded:smollm2``; default: the shipped model of models/default.json), ``lora`` (path or
``none``), ``merge`` (the Extractor's ``lora_merge``: ``auto`` (its default), ``q4_0``, ``q8_0``, ``f16``,
``none`` = adapter applied at run time), ``n_parallel``, ``n_threads``, ``n_batch``, ``n_ctx``, ``grammar``
(0/1), ``require_spans`` (0/1), ``max_tokens``, ``end_bias`` (ptoie arms). The naive arm always applies the adapter at run time.

Compute bound: the deployed model's prompt-evaluation rate (tokens/s, measured interleaved with
the arms on every chunk: the same model answering one token per sentence, greedy and without
grammar, through ``Extractor.extract_batch``; the tokens are the non-shared part of each prompt,
the seconds include the one sampled token) divided by the tokens each sentence costs (non-shared
prompt tokens + generated tokens). Quality: (b)'s triples scored against (a)'s as gold with ptoie.evaluation's lexical
matcher; unparseable = sentences whose output has a line the parser rejects.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TRANSALIGN_FILES = ("carb.conll", "dev.conll", "ls_dev.conll", "ls_test.conll", "s2_TA_valid.conll")
DATA_DIRS = (Path("/work/shared/data"), ROOT.parent / "shared" / "data")


# --- corpus ---------------------------------------------------------------------------------------

def load_corpus(n: int) -> tuple[list[str], dict[str, int]]:
    """``n`` distinct sentences: PUD-100 first, then TransAlign; and how many came from each."""
    from ptoie.training.conll import read_conll
    from ptoie.evaluation import load_benchmark
    from ptoie.evaluation.matchers import sentence_key

    seen: set[str] = set()
    sentences: list[str] = []
    counts = {"pud100": 0, "transalign": 0}

    def add(text: str, source: str) -> None:
        key = sentence_key(text)
        if len(sentences) < n and key and key not in seen:
            seen.add(key)
            sentences.append(text)
            counts[source] += 1

    for s in load_benchmark("pud100").sentences:
        add(s.text, "pud100")
    if len(sentences) < n:
        folder = next((d / "transalign" for d in DATA_DIRS if (d / "transalign").is_dir()), None)
        if folder is None:
            raise SystemExit(f"need {n} sentences but no transalign/ folder in {DATA_DIRS}")
        for name in TRANSALIGN_FILES:
            if len(sentences) >= n or not (folder / name).is_file():
                continue
            for tagged in read_conll(folder / name).sentences:
                add(" ".join(tagged.tokens), "transalign")
    if len(sentences) < n:
        raise SystemExit(f"only {len(sentences)} distinct sentences available, asked for {n}")
    return sentences, counts


# --- arms -----------------------------------------------------------------------------------------

@dataclass
class Output:
    text: str
    prompt_tokens: int
    generated_tokens: int


@dataclass
class ArmSpec:
    label: str
    kind: str = "ptoie"
    model: str | None = None
    lora: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, defaults: dict[str, Any]) -> "ArmSpec":
        label, _, rest = text.partition(":")
        values = dict(defaults)
        for item in filter(None, rest.split(",")):
            key, eq, value = item.partition("=")
            if not eq:
                raise SystemExit(f"arm {text!r}: expected key=value, got {item!r}")
            values[key.strip()] = value.strip()
        spec = cls(label=label or "arm", kind=values.pop("kind", "ptoie"),
                   model=values.pop("model", None), lora=values.pop("lora", None))
        for key, value in values.items():
            try:
                if key == "merge":
                    spec.settings["lora_merge"] = None if value == "none" else value
                elif key in ("n_parallel", "n_threads", "n_batch", "n_ctx", "max_tokens"):
                    spec.settings[key] = int(value)
                elif key in ("grammar", "require_spans"):
                    spec.settings[key] = bool(int(value))
                elif key == "end_bias":
                    spec.settings[key] = float(value)
                else:
                    raise SystemExit(f"arm {text!r}: unknown key {key!r}")
            except ValueError as exc:
                raise SystemExit(f"arm {text!r}: {key}: {exc}") from None
        if spec.kind not in ("naive", "ptoie"):
            raise SystemExit(f"arm {text!r}: kind must be naive or ptoie")
        return spec

    def paths(self) -> tuple[Path, Path | None]:
        from ptoie.extract.config import ModelConfig
        from ptoie.extract.default_model import resolve_model_path
        from ptoie.extract.extractor import model_files
        if self.model is None:
            model, lora = model_files(ModelConfig().with_default_model())
        else:
            model, lora = resolve_model_path(self.model), None
        if self.lora is not None:
            lora = None if self.lora == "none" else Path(self.lora)
        return model, lora


class NaiveArm:
    """One ``create_chat_completion`` per sentence, the adapter applied at run time: the naive loop."""

    def __init__(self, spec: ArmSpec) -> None:
        import llama_cpp
        model, lora = spec.paths()
        self.max_tokens = spec.settings.get("max_tokens", 160)
        self.llm = llama_cpp.Llama(model_path=str(model), lora_path=str(lora) if lora else None,
                                   n_ctx=spec.settings.get("n_ctx", 2048), n_threads=spec.settings.get("n_threads", os.cpu_count()),
                                   n_batch=spec.settings.get("n_batch", 512), seed=0, verbose=False)
        self.what = f"create_chat_completion loop, {model.name}" + (f" + adapter {lora.name}" if lora else "")

    def run(self, sentences: list[str]) -> list[Output]:
        from ptoie.extract.prompt import build_messages
        outputs = []
        for sentence in sentences:
            reply = self.llm.create_chat_completion(messages=build_messages(sentence), temperature=0.0,
                                                    max_tokens=self.max_tokens, seed=0)
            usage = reply["usage"]
            outputs.append(Output(reply["choices"][0]["message"]["content"] or "",
                                  usage["prompt_tokens"], usage["completion_tokens"]))
        return outputs

    def close(self) -> None:
        self.llm.close()


class PtoieArm:
    """``Extractor.extract_batch`` on each chunk, greedy."""

    def __init__(self, spec: ArmSpec) -> None:
        from ptoie import Extractor
        model, lora = spec.paths()
        kwargs = {k: v for k, v in spec.settings.items() if k != "grammar"}
        kwargs.setdefault("n_threads", os.cpu_count())
        self.extractor = Extractor(model, lora_path=lora, temperature=0.0,
                                   grammar=bool(spec.settings.get("grammar", 1)), **kwargs)
        self._prompt_only: Any = None
        self._shared_tokens = 0
        ex = self.extractor
        self.what = (f"Extractor, loads {ex.loaded_path.name}"
                     + (f" + adapter {ex.lora_path.name} at run time" if ex.lora_path and not ex.lora_merge else "")
                     + f", n_parallel={ex.model.n_parallel}, grammar={'on' if ex.decoding.grammar else 'off'}"
                     + f", threads={kwargs['n_threads']}")

    def run(self, sentences: list[str]) -> list[Output]:
        return [Output(r.raw_output, r.prompt_tokens, r.generated_tokens)
                for r in self.extractor.extract_batch(sentences)]

    def prompt_eval(self, sentences: list[str]) -> tuple[int, float]:
        """``(non-shared prompt tokens, seconds)`` of the same model answering ONE token per
        sentence (greedy, no grammar): its prompt evaluation, plus one sampled token each."""
        from dataclasses import replace

        from ptoie import Extractor
        if self._prompt_only is None:
            ex = self.extractor
            self._prompt_only = Extractor(model=ex.model, decoding=replace(ex.decoding, max_tokens=1, grammar=False))
        began = time.perf_counter()
        results = self._prompt_only.extract_batch(sentences)
        seconds = time.perf_counter() - began
        self._shared_tokens = max((r.shared_prompt_tokens for r in results), default=0)
        return sum(r.prompt_tokens - r.shared_prompt_tokens for r in results), seconds

    def shared_prefix_tokens(self) -> int:
        return self._shared_tokens

    def close(self) -> None:
        self.extractor.close()
        if self._prompt_only is not None:
            self._prompt_only.close()


def open_arm(spec: ArmSpec) -> NaiveArm | PtoieArm:
    return NaiveArm(spec) if spec.kind == "naive" else PtoieArm(spec)


# --- interleaved measurement ------------------------------------------------------------------------

@dataclass
class ArmResult:
    spec: ArmSpec
    outputs: list[Output | None]
    seconds: list[float] = field(default_factory=list)   # per repeat
    load_seconds: float = 0.0
    what: str = ""

    @property
    def sentences_per_s(self) -> float:
        return len(self.outputs) * len(self.seconds) / sum(self.seconds)

    def spread(self) -> tuple[float, float]:
        rates = [len(self.outputs) / s for s in self.seconds]
        return min(rates), max(rates)

    @property
    def generated_tokens(self) -> int:
        return sum(o.generated_tokens for o in self.outputs if o)

    @property
    def prompt_tokens(self) -> int:
        return sum(o.prompt_tokens for o in self.outputs if o)


def interleave(specs: list[ArmSpec], sentences: list[str], *, chunk: int, repeats: int,
               bound_arm: int | None) -> tuple[list[ArmResult], dict[str, float] | None]:
    """Run every chunk through every arm in rotating order, ``repeats`` times; with ``bound_arm``,
    also measure that arm's prompt-evaluation rate on every chunk (same interleaving)."""
    arms, results = [], []
    for spec in specs:
        began = time.perf_counter()
        arms.append(open_arm(spec))
        results.append(ArmResult(spec, [None] * len(sentences), load_seconds=time.perf_counter() - began,
                                 what=arms[-1].what))
    bound = {"tokens": 0, "seconds": 0.0} if bound_arm is not None else None
    chunks = [range(i, min(i + chunk, len(sentences))) for i in range(0, len(sentences), chunk)]
    n_jobs = len(arms) + (bound is not None)
    step = 0
    try:
        for _ in range(repeats):
            elapsed = [0.0] * len(arms)
            for rows in chunks:
                batch = [sentences[i] for i in rows]
                for k in range(n_jobs):
                    job = (step + k) % n_jobs
                    if job == len(arms):
                        n, s = arms[bound_arm].prompt_eval(batch)
                        bound["tokens"] += n
                        bound["seconds"] += s
                        continue
                    began = time.perf_counter()
                    outs = arms[job].run(batch)
                    elapsed[job] += time.perf_counter() - began
                    for i, out in zip(rows, outs):
                        results[job].outputs[i] = out
                step += 1
                print(f"  chunk {rows.start}-{rows.stop - 1} done", file=sys.stderr, flush=True)
            for job, s in enumerate(elapsed):
                results[job].seconds.append(s)
        if bound is not None:
            bound["shared_prefix_tokens"] = arms[bound_arm].shared_prefix_tokens()
    finally:
        for arm in arms:
            arm.close()
    return results, bound


def peak_rss_mb(spec: ArmSpec, sentences: list[str], env: dict[str, str] | None = None) -> float:
    """Peak RSS of a fresh process that loads ``spec`` and runs it on ``sentences``."""
    payload = json.dumps({"arm": spec.__dict__, "sentences": sentences})
    proc = subprocess.run([sys.executable, __file__, "_rss"], input=payload, capture_output=True,
                          text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def _rss_child() -> None:
    payload = json.loads(sys.stdin.read())
    arm = open_arm(ArmSpec(**payload["arm"]))
    arm.run(payload["sentences"])
    status = Path("/proc/self/status").read_text().splitlines()
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"peak_rss_mb": peak_kb / 1024}))


# --- scoring ----------------------------------------------------------------------------------------

def unparseable(outputs: list[Output], sentences: list[str]) -> tuple[int, int]:
    """(sentences with a rejected line, rejected lines)."""
    from ptoie.extract.parser import parse_answer
    rejected = [parse_answer(o.text, s).rejected for o, s in zip(outputs, sentences)]
    return sum(1 for r in rejected if r), sum(rejected)


def f1_against(reference: list[Output], other: list[Output], sentences: list[str]) -> dict[str, float]:
    """Lexical F1 (pt normalization) of ``other``'s triples with ``reference``'s triples as gold."""
    from ptoie.evaluation import Benchmark, GoldSentence, GoldTriple, Prediction, score
    from ptoie.extract.parser import parse_answer
    gold = [GoldSentence(str(i), s, [GoldTriple(*t.parts) for t in parse_answer(o.text, s).triples])
            for i, (s, o) in enumerate(zip(sentences, reference))]
    bench = Benchmark(name="reference-arm", source="bench", sha256="", sentences=gold)
    preds = [Prediction(s, *t.parts) for s, o in zip(sentences, other) for t in parse_answer(o.text, s).triples]
    scores = score(bench, preds, matcher="lexical", normalization="pt")
    same = sum(1 for a, b in zip(reference, other) if a.text.strip() == b.text.strip())
    return {"f1": scores.f1, "precision": scores.precision, "recall": scores.recall,
            "identical_outputs": same / len(sentences)}


def pud100_f1(outputs: list[Output], sentences: list[str]) -> float | None:
    """Lexical F1 (pt) against PUD-100's gold of the arm's outputs for the PUD-100 sentences (the
    corpus starts with them); None when the corpus holds fewer than all 100."""
    from ptoie.evaluation import Prediction, load_benchmark, score
    from ptoie.extract.parser import parse_answer
    bench = load_benchmark("pud100")
    n = len(bench.sentences)
    if len(sentences) < n or sentences[:n] != [g.text for g in bench.sentences]:
        return None
    preds = [Prediction(s, *t.parts, t.confidence) for s, o in zip(sentences[:n], outputs[:n])
             for t in parse_answer(o.text, s).triples]
    return score(bench, preds, matcher="lexical", normalization="pt").f1


# --- reports ------------------------------------------------------------------------------------------

def machine() -> str:
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    import llama_cpp
    return (f"{model}, {os.cpu_count()} cores; python {platform.python_version()}; "
            f"llama-cpp-python {llama_cpp.__version__} ({Path(llama_cpp.__file__).parent}); "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def arm_table(results: list[ArmResult], baseline: int = 0) -> list[dict[str, Any]]:
    base = results[baseline].sentences_per_s
    rows = []
    for r in results:
        lo, hi = r.spread()
        n = len(r.outputs)
        rows.append({"arm": r.spec.label, "what": r.what, "sent_per_s": r.sentences_per_s,
                     "min_max": (lo, hi), "ratio": r.sentences_per_s / base,
                     "prompt_tok": r.prompt_tokens / n, "gen_tok": r.generated_tokens / n,
                     "gen_tok_per_s": r.generated_tokens * len(r.seconds) / sum(r.seconds),
                     "load_s": r.load_seconds})
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'arm':<14} {'sent/s':>7} {'(min-max)':>13} {'ratio':>6} {'prompt tok':>10} {'gen tok':>8} "
          f"{'gen tok/s':>9}  what")
    for r in rows:
        lo, hi = r["min_max"]
        print(f"{r['arm']:<14} {r['sent_per_s']:7.2f} {f'{lo:.2f}-{hi:.2f}':>13} {r['ratio']:6.2f} "
              f"{r['prompt_tok']:10.1f} {r['gen_tok']:8.1f} {r['gen_tok_per_s']:9.1f}  {r['what']}")


def cmd_compare(args: argparse.Namespace) -> dict[str, Any]:
    sentences, counts = load_corpus(args.sentences)
    common = {"n_threads": args.threads}
    specs = [ArmSpec.parse(f"naive:kind=naive", common),
             ArmSpec.parse(f"ptoie:n_parallel={args.n_parallel},grammar=1", common),
             ArmSpec.parse(f"ptoie-nogram:n_parallel={args.n_parallel},grammar=0", common)]
    if args.model:
        for s in specs:
            s.model, s.lora = args.model, args.lora or "none"
    print(f"machine: {machine()}")
    print(f"corpus: {len(sentences)} sentences ({counts['pud100']} PUD-100 + {counts['transalign']} "
          f"TransAlign), chunks of {args.chunk}, {args.repeats} repeat(s), threads {args.threads}")
    results, bound = interleave(specs, sentences, chunk=args.chunk, repeats=args.repeats, bound_arm=1)
    rows = arm_table(results)
    print_table(rows)
    naive, ptoie, nogram = results
    n = len(sentences)
    prompt_eval_rate = bound["tokens"] / bound["seconds"]
    suffix = ptoie.prompt_tokens / n - bound["shared_prefix_tokens"]
    per_sentence = suffix + ptoie.generated_tokens / n
    bound_rate = prompt_eval_rate / per_sentence
    quality = f1_against(naive.outputs, ptoie.outputs, sentences)
    quality_nogram = f1_against(naive.outputs, nogram.outputs, sentences)
    report = {
        "machine": machine(), "sentences": n, "corpus": counts, "arms": rows,
        "ratio_ptoie_over_naive": ptoie.sentences_per_s / naive.sentences_per_s,
        "prompt_eval_tok_per_s": prompt_eval_rate, "shared_prefix_tokens": bound["shared_prefix_tokens"],
        "non_shared_prompt_tokens": suffix, "tokens_per_sentence": per_sentence,
        "compute_bound_sent_per_s": bound_rate, "fraction_of_bound": ptoie.sentences_per_s / bound_rate,
        "f1_ptoie_vs_naive": quality, "f1_nogrammar_vs_naive": quality_nogram,
        "pud100_f1": {r.spec.label: pud100_f1(r.outputs, sentences) for r in results},
        "unparseable": {label: unparseable(r.outputs, sentences) for label, r in
                        (("naive", naive), ("grammar_on", ptoie), ("grammar_off", nogram))},
    }
    print(f"ratio ptoie/naive: {report['ratio_ptoie_over_naive']:.2f}x")
    print(f"prompt eval: {prompt_eval_rate:.1f} tok/s; shared prefix {bound['shared_prefix_tokens']} tok; "
          f"per sentence {suffix:.1f} non-shared prompt + {ptoie.generated_tokens / n:.1f} generated "
          f"= {per_sentence:.1f} tok -> bound {bound_rate:.2f} sent/s; ptoie reaches "
          f"{report['fraction_of_bound']:.2f} of it")
    print(f"F1 of ptoie vs naive (naive as gold, lexical/pt): {quality['f1']:.4f} "
          f"(P {quality['precision']:.4f} R {quality['recall']:.4f}; identical outputs "
          f"{quality['identical_outputs']:.1%}); grammar off: {quality_nogram['f1']:.4f}")
    if report["pud100_f1"]["naive"] is not None:
        print("PUD-100 F1 vs gold (lexical/pt, greedy): " + ", ".join(
            f"{k} {v:.4f}" for k, v in report["pud100_f1"].items()))
    for label, (sents, lines) in report["unparseable"].items():
        print(f"unparseable {label}: {sents}/{n} sentences ({sents / n:.1%}), {lines} rejected lines")
    if not args.no_rss:
        probe = sentences[:args.rss_sentences]
        report["peak_rss_mb"] = {s.label: peak_rss_mb(s, probe) for s in specs[:2]}
        print("peak RSS (fresh process, load + %d sentences): %s" % (
            len(probe), ", ".join(f"{k} {v:.0f} MB" for k, v in report["peak_rss_mb"].items())))
    return report


def cmd_sweep(args: argparse.Namespace) -> dict[str, Any]:
    sentences, counts = load_corpus(args.sentences)
    defaults = {"n_threads": args.threads}
    specs = [ArmSpec.parse(a, defaults) for a in args.arms]
    bound_arm = next((i for i, s in enumerate(specs) if s.kind == "ptoie"), None) if args.bound else None
    print(f"machine: {machine()}", file=sys.stderr if args.json else sys.stdout)
    results, bound = interleave(specs, sentences, chunk=args.chunk, repeats=args.repeats,
                                bound_arm=bound_arm)
    rows = arm_table(results)
    report: dict[str, Any] = {"machine": machine(), "sentences": len(sentences), "corpus": counts,
                              "arms": rows}
    if bound:
        report["prompt_eval_tok_per_s"] = bound["tokens"] / bound["seconds"]
    if len(results) > 1:
        report["f1_vs_first"] = {r.spec.label: f1_against(results[0].outputs, r.outputs, sentences)
                                 for r in results[1:]}
    report["unparseable"] = {r.spec.label: unparseable(r.outputs, sentences) for r in results}
    if args.json:
        print(json.dumps(report))
        return report
    print(f"corpus: {len(sentences)} sentences ({counts['pud100']} PUD-100 + {counts['transalign']} "
          f"TransAlign), chunks of {args.chunk}, {args.repeats} repeat(s)")
    print_table(rows)
    if bound:
        print(f"prompt eval ({specs[bound_arm].label}): {report['prompt_eval_tok_per_s']:.1f} tok/s")
    for label, q in report.get("f1_vs_first", {}).items():
        print(f"{label} vs {results[0].spec.label}: F1 {q['f1']:.4f}, identical outputs "
              f"{q['identical_outputs']:.1%}")
    for label, (sents, lines) in report["unparseable"].items():
        print(f"unparseable {label}: {sents}/{len(sentences)} sentences, {lines} rejected lines")
    return report


def cmd_builds(args: argparse.Namespace) -> dict[str, Any]:
    """Alternate child processes that run the same sweep under different llama.cpp builds
    (``LABEL=SITE``: SITE is prepended to PYTHONPATH; empty = the current environment)."""
    builds = [b.partition("=")[::2] for b in args.build]
    per_build: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in builds}
    child = [sys.executable, __file__, "sweep", "--json", "--sentences", str(args.sentences), "--chunk",
             str(args.chunk), "--threads", str(args.threads), "--bound", "--arms", *args.arms]
    print(f"machine: {machine()}")
    for r in range(args.repeats):
        order = builds if r % 2 == 0 else builds[::-1]
        for label, site in order:
            env = dict(os.environ)
            if site:
                env["PYTHONPATH"] = site + os.pathsep + env.get("PYTHONPATH", "")
            proc = subprocess.run(child, capture_output=True, text=True, env=env)
            if proc.returncode:
                raise SystemExit(f"build {label}: child failed\n{proc.stderr[-3000:]}")
            per_build[label].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"  {label} repeat {r}: " + ", ".join(
                f"{a['arm']} {a['sent_per_s']:.2f} sent/s" for a in per_build[label][-1]["arms"])
                + f", prompt eval {per_build[label][-1].get('prompt_eval_tok_per_s', 0):.1f} tok/s",
                flush=True)
    first = builds[0][0]
    summary = {}
    for label, runs in per_build.items():
        summary[label] = {
            "sent_per_s": {a["arm"]: statistics.median(r["arms"][i]["sent_per_s"] for r in runs)
                           for i, a in enumerate(runs[0]["arms"])},
            "prompt_eval_tok_per_s": statistics.median(r.get("prompt_eval_tok_per_s", 0) for r in runs),
        }
    print(f"{'build':<10} {'arm':<12} {'sent/s (median)':>15} {'ratio':>6} {'prompt eval tok/s':>18} {'ratio':>6}")
    for label, s in summary.items():
        for arm, rate in s["sent_per_s"].items():
            base = summary[first]
            print(f"{label:<10} {arm:<12} {rate:15.2f} {rate / base['sent_per_s'][arm]:6.2f} "
                  f"{s['prompt_eval_tok_per_s']:18.1f} "
                  f"{s['prompt_eval_tok_per_s'] / base['prompt_eval_tok_per_s']:6.2f}")
    outputs_same = {label: [r["f1_vs_first"] for r in runs if "f1_vs_first" in r] for label, runs in per_build.items()}
    return {"builds": dict(builds), "runs": per_build, "summary": summary, "f1": outputs_same}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_rss"]:
        _rss_child()
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("compare", "sweep", "builds"):
        p = sub.add_parser(name)
        p.add_argument("--sentences", type=int, default=200 if name == "compare" else 64)
        p.add_argument("--chunk", type=int, default=32,
                       help="sentences per extract_batch call and interleaving step (default 32, "
                       "the batch job's batch_sentences)")
        p.add_argument("--repeats", type=int, default=1 if name == "compare" else 2)
        p.add_argument("--threads", type=int, default=os.cpu_count())
        p.add_argument("--out", type=Path, help="also write the report as JSON here")
        if name == "compare":
            p.add_argument("--n-parallel", type=int, default=8)
            p.add_argument("--model", help="model of all arms (default: the shipped base + adapter)")
            p.add_argument("--lora", help="adapter with --model (default none)")
            p.add_argument("--no-rss", action="store_true")
            p.add_argument("--rss-sentences", type=int, default=16)
        else:
            p.add_argument("--arms", nargs="+", required=True, help="LABEL:key=value,...")
        if name == "sweep":
            p.add_argument("--bound", action="store_true", help="also measure the prompt-eval rate")
            p.add_argument("--json", action="store_true", help="print one JSON report line only")
        if name == "builds":
            p.add_argument("--build", action="append", required=True, help="LABEL=SITE_DIR ('' = current)")
    args = parser.parse_args(argv)
    report = {"compare": cmd_compare, "sweep": cmd_sweep, "builds": cmd_builds}[args.command](args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
