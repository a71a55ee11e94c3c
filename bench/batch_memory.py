"""Peak memory and throughput of ``ptoie-batch`` for 1 and 2 Ray workers (a script, not a test).

    .venv/bin/python bench/batch_memory.py                      # 2,000 sentences, workers 1 and 2
    .venv/bin/python bench/batch_memory.py --sentences 300 --max-tokens 24

The corpus is built from TransAlign sentences (``ptoie.training.conll.read_conll`` on
``shared/data/transalign/*.conll``), 10 sentences per JSONL document, written to a temporary
folder: a speed measurement only, nothing is trained. Each worker count runs the real command in a
subprocess (a fresh local Ray each time, ``--overwrite``); the whole process tree -- driver, Ray's
GCS and raylet, the worker actors -- is sampled every ``--interval`` seconds. Reported: the peak of
the summed RSS (overcounts pages shared between processes: the mmapped model, the object store)
and of the summed PSS (shared pages split between their processes: the closer figure), and
sentences/s as the job reports it (wall time of the whole run: Ray start, model load, extraction,
graph building).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from ptoie.training.conll import read_conll

REPO = Path(__file__).resolve().parents[1]
DATA_CANDIDATES = [Path("/work/shared/data/transalign"), REPO.parent / "shared/data/transalign"]


def transalign_sentences(limit: int) -> list[str]:
    for folder in DATA_CANDIDATES:
        files = sorted(folder.glob("*.conll"))
        if files:
            break
    else:
        raise SystemExit(f"no TransAlign *.conll under {' or '.join(map(str, DATA_CANDIDATES))}")
    sentences = [" ".join(s.tokens) for s in read_conll(files).sentences]
    if len(sentences) < limit:
        raise SystemExit(f"only {len(sentences)} TransAlign sentences, asked for {limit}")
    return sentences[:limit]


def write_corpus(sentences: list[str], folder: Path, per_document: int = 10) -> Path:
    path = folder / "transalign.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for start in range(0, len(sentences), per_document):
            # paragraph breaks: the job's splitter keeps exactly these sentences
            text = "\n\n".join(sentences[start:start + per_document])
            fh.write(json.dumps({"id": f"ta-{start // per_document:05d}", "text": text},
                                ensure_ascii=False) + "\n")
    return path


def tree_memory(root: psutil.Process) -> tuple[int, int]:
    """(summed RSS, summed PSS) in bytes of ``root`` and all its descendants."""
    rss = pss = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    for process in processes:
        try:
            info = process.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss


def run_job(corpus: Path, out: Path, workers: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "ptoie.cli.batch", str(corpus), "--out", str(out), "--overwrite",
               "--workers", str(workers), "--threads-per-worker", str(args.threads_per_worker),
               "--max-tokens", str(args.max_tokens), "--n-parallel", str(args.n_parallel),
               "--batch-sentences", str(args.batch_sentences), "--n-ctx", str(args.n_ctx),
               "--temperature", "0",
               "--progress", "never"]
    if args.model:
        command += ["--model", args.model]
    start = time.monotonic()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    root = psutil.Process(process.pid)
    peak_rss = peak_pss = 0
    while process.poll() is None:
        rss, pss = tree_memory(root)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(args.interval)
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"ptoie-batch exited {process.returncode}:\n{stderr[-3000:]}")
    summary = json.loads((out.with_suffix(".parquet") / "_last_run.json").read_text())
    return {"workers": workers, "sentences": summary["sentences"], "triples": summary["triples"],
            "wall_s": time.monotonic() - start, "job_s": summary["seconds"],
            "sentences_per_s": summary["sentences"] / summary["seconds"],
            "peak_rss_mb": peak_rss / 2**20, "peak_pss_mb": peak_pss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--n-parallel", type=int, default=16, help="(default: the job's, 16)")
    parser.add_argument("--batch-sentences", type=int, default=32)
    parser.add_argument("--n-ctx", type=int, default=1024)
    parser.add_argument("--model", help="GGUF model (default: the shipped model)")
    parser.add_argument("--interval", type=float, default=0.5, help="sampling period, seconds")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="ptoie-bench-") as tmp:
        corpus = write_corpus(transalign_sentences(args.sentences), Path(tmp))
        for workers in (int(w) for w in args.workers.split(",")):
            rows.append(run_job(corpus, Path(tmp) / f"w{workers}" / "kg.ttl", workers, args))
            print(f"workers={workers}: done", file=sys.stderr, flush=True)

    print(f"\nptoie-batch on {args.sentences} TransAlign sentences, max_tokens={args.max_tokens}, "
          f"n_parallel={args.n_parallel}, n_ctx={args.n_ctx}, threads/worker={args.threads_per_worker}, "
          f"{psutil.cpu_count()} CPUs")
    header = f"{'workers':>7} {'sentences':>9} {'triples':>7} {'job s':>7} {'sent/s':>7} " \
             f"{'peak RSS MB':>11} {'peak PSS MB':>11}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['workers']:>7} {r['sentences']:>9} {r['triples']:>7} {r['job_s']:>7.1f} "
              f"{r['sentences_per_s']:>7.2f} {r['peak_rss_mb']:>11.0f} {r['peak_pss_mb']:>11.0f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
