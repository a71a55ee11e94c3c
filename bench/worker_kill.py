"""A batch job whose workers are killed: does it finish everything, with the same triples, in
about the same time? (A script, not a test; ``tests/test_batch.py`` has the small versions.)

    .venv/bin/python bench/worker_kill.py [--sentences 1200] [--per-document 10] [--kill-at 20 40]

Writes ``--sentences`` sentences (PUD-100's, then TransAlign's, as ``bench/throughput.py`` picks
them) as .txt documents of ``--per-document`` sentences, then runs ``ptoie-batch`` with default
flags twice: uninterrupted, and with ``kill -9`` of one ``ray::ExtractorWorker`` process of the job
at each ``--kill-at`` second (the process alive at that moment, so a restarted one too). Prints,
for the killed run: exit status, documents skipped, whether its triples and raw model outputs
equal the uninterrupted run's, and the ratio of the two wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import pyarrow.dataset as ds

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throughput import load_corpus  # noqa: E402

MARK = "PTOIE_BENCH_KILL"


def write_documents(folder: Path, sentences: list[str], per_document: int) -> int:
    folder.mkdir(parents=True)
    n = 0
    for n, first in enumerate(range(0, len(sentences), per_document), start=1):
        (folder / f"doc{n:04d}.txt").write_text(" ".join(sentences[first:first + per_document]),
                                                encoding="utf-8")
    return n


def job_workers(mark: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if (proc.info["cmdline"] or [""])[0].startswith("ray::ExtractorWorker") \
                    and proc.environ().get(MARK) == mark:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def run(corpus: Path, out: Path, kill_at: list[float]) -> tuple[int, float, list[int], str]:
    mark = uuid.uuid4().hex
    env = os.environ | {"PYTHONPATH": str(ROOT), MARK: mark}
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "ptoie.cli.batch", str(corpus), "--out",
                                str(out / "kg.ttl"), "--progress", "never"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = []
    for at in kill_at:
        while process.poll() is None and time.monotonic() - start < at:
            time.sleep(0.1)
        workers = job_workers(mark)
        if process.poll() is None and workers:
            workers[0].kill()
            killed.append(workers[0].pid)
    stdout, _ = process.communicate()
    return process.returncode, time.monotonic() - start, killed, stdout


def outputs(out: Path) -> tuple[list[tuple], dict[str, str]]:
    table = ds.dataset(out / "kg.parquet", format="parquet").to_table()
    rows = sorted((r["doc_id"], r["sentence_id"], r["extraction_index"], r["arg1"], r["rel"],
                   r["arg2"]) for r in table.to_pylist())
    lines = (out / "kg.parquet" / "_manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return rows, {e["doc_id"]: e["outputs_sha256"] for e in map(json.loads, lines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=1200)
    parser.add_argument("--per-document", type=int, default=10)
    parser.add_argument("--kill-at", type=float, nargs="*", default=[20.0, 40.0])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ptoie-kill-") as tmp:
        sentences, _ = load_corpus(args.sentences)
        documents = write_documents(Path(tmp) / "corpus", sentences, args.per_document)
        code, clean_s, _, _ = run(Path(tmp) / "corpus", Path(tmp) / "clean", [])
        print(f"uninterrupted: exit {code}, {clean_s:.1f} s, {documents} documents")
        code, killed_s, killed, stdout = run(Path(tmp) / "corpus", Path(tmp) / "killed",
                                             args.kill_at)
        skipped = next((line for line in stdout.splitlines() if "documents" in line), "")
        same_rows, same_raw = (a == b for a, b in zip(outputs(Path(tmp) / "clean"),
                                                      outputs(Path(tmp) / "killed")))
        print(f"killed {len(killed)} worker(s) at {args.kill_at} s: exit {code}, {killed_s:.1f} s "
              f"({killed_s / clean_s:.2f}x); {skipped.strip()}; triples identical: {same_rows}; "
              f"raw outputs identical: {same_raw}")


if __name__ == "__main__":
    main()
