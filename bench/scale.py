"""Scale of the batch job, measured in one run (a script, not a test).

    .venv/bin/python bench/scale.py outputs [--sizes 10000 100000 1000000] [--shard-rows 40]
    .venv/bin/python bench/scale.py job [--sentences 2000]

``outputs``: the graph stage (``ptoie.kg.build_graph``, the code of ``ptoie-batch`` and
``ptoie-kg``) on synthetic triples in the triple schema, written as Parquet shards of
``--shard-rows`` rows (the job's default batch of 32 sentences makes shards of about 40 triples).
Each size runs in a fresh process, so its peak RSS is its own; the shards are written before the
clock starts. Printed per size: seconds and peak RSS of a first build (every default output), of a
rebuild with nothing changed, and of an incremental build after 1 % more shards; then the growth
exponent log(t2/t1)/log(n2/n1) between the last two sizes, for the same outputs (GraphML and
node-link are written only up to ``--max-graph-triples``, 200,000 by default, so the exponent is
computed on the streamed outputs: RDF file, Oxigraph store, picture).

``job``: ``ptoie-batch`` with its default flags vs the ``Extractor`` alone (all cores, its
defaults) on the same sentences (``--sentences``: PUD-100's, then TransAlign's, as
``bench/throughput.py`` picks them; 20 per .txt document, a blank line between), interleaved
in one run, and the ratio of sentences per second.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = ("rio cidade governo presidente empresa livro escola universidade estado país banco "
         "museu igreja partido ministro festival jornal clube hospital estrada ponte porto").split()
NAMES = ("Lisboa Porto Brasil Portugal Angola Amazonas Camões Pessoa Machado Assis Bahia Minas "
         "Recife Coimbra Braga Luanda Maputo Goiás Paraná Ceará Pará Belém Manaus Natal").split()
RELATIONS = ("fica em|nasceu em|escreveu|fundou|é capital de|pertence a|governa|visitou|"
             "publicou|construiu|é membro de|mora em|estuda em|dirige|venceu").split("|")


# -- outputs ----------------------------------------------------------------------------------
def synthetic_shards(directory: Path, rows: int, shard_rows: int, *, start: int = 0,
                     seed: int = 0) -> list[Path]:
    """Shards of synthetic triples: entities drawn with a long tail (a few very frequent), as in
    real graphs; one sentence per row, 1-3 triples per sentence."""
    from ptoie.sinks import records_table, write_parquet_shard

    rng = random.Random(seed + start)
    entities = [f"{rng.choice(WORDS)} de {rng.choice(NAMES)} {i}" for i in range(max(rows // 3, 10))]
    paths = []
    for first in range(start, start + rows, shard_rows):
        records = []
        for i in range(first, min(first + shard_rows, start + rows)):
            a = entities[int(len(entities) * rng.random() ** 3)]
            b = entities[int(len(entities) * rng.random() ** 2)]
            rel = rng.choice(RELATIONS)
            doc = f"doc-{i // 40:07d}"
            records.append({"doc_id": doc, "sentence_id": (i % 40) // 2, "extraction_index": i % 2,
                            "sentence": f"Segundo o relatório, {a} {rel} {b} desde {1900 + i % 120}.",
                            "arg1": a, "rel": rel, "arg2": b, "confidence": rng.random(),
                            "model_id": "synthetic.gguf", "doc_url": None, "doc_title": None,
                            "arg1_start": None, "arg1_end": None, "rel_start": None,
                            "rel_end": None, "arg2_start": None, "arg2_end": None})
        paths.append(write_parquet_shard(records_table(records), directory,
                                         f"part-{first:09d}.parquet"))
    return paths


def _one_size(rows: int, shard_rows: int, work: Path, max_graph_triples: int) -> None:
    """Child process: one size, prints a JSON line."""
    from ptoie.kg import GraphOutputs, build_graph

    shards = work / "kg.parquet"
    sources = synthetic_shards(shards, rows, shard_rows)
    outputs = GraphOutputs.beside(work / "kg.ttl", max_graph_triples=max_graph_triples)
    cache = shards / "_kg"
    result = {"rows": rows, "shards": len(sources)}
    began = time.perf_counter()
    report = build_graph(sources, outputs, cache=cache)
    result["first_s"] = time.perf_counter() - began
    result["skipped"] = sorted(report.skipped)
    result["counts"] = report.counts
    began = time.perf_counter()
    again = build_graph(sources, outputs, cache=cache)
    result["unchanged_s"] = time.perf_counter() - began
    result["rewritten_when_unchanged"] = again.written
    more = synthetic_shards(shards, max(rows // 100, shard_rows), shard_rows, start=rows)
    began = time.perf_counter()
    build_graph(sources + more, outputs, cache=cache)
    result["plus_1pct_s"] = time.perf_counter() - began
    result["rdf_mb"] = round(outputs.rdf.stat().st_size / 2**20, 1)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps(result))


def bench_outputs(sizes: list[int], shard_rows: int, max_graph_triples: int) -> None:
    results = []
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="ptoie-scale-") as tmp:
            out = subprocess.run([sys.executable, __file__, "_one", str(rows), str(shard_rows), tmp,
                                  str(max_graph_triples)], capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"size {rows}: failed\n{out.stderr}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f"{rows:>9,} triples, {result['shards']:>6,} shards: first build "
              f"{result['first_s']:7.1f} s, peak RSS {result['peak_rss_mb']:>5,} MB; "
              f"unchanged rerun {result['unchanged_s']:5.1f} s (rewrote {result['rewritten_when_unchanged'] or 'nothing'}); "
              f"+1 % shards {result['plus_1pct_s']:5.1f} s; RDF {result['rdf_mb']} MB; "
              f"not written: {result['skipped'] or 'none'}; counts {result['counts']}", flush=True)
    if len(results) >= 2:
        a, b = results[-2], results[-1]
        exponent = math.log(b["first_s"] / a["first_s"]) / math.log(b["rows"] / a["rows"])
        note = ("same outputs" if a["skipped"] == b["skipped"] else
                f"NOTE: {sorted(set(b['skipped']) - set(a['skipped']))} written only at the smaller size")
        print(f"growth exponent of the first build, {a['rows']:,} -> {b['rows']:,}: {exponent:.2f} ({note})")


# -- job vs Extractor -------------------------------------------------------------------------
def _sentences(n: int) -> list[str]:
    sys.path.insert(0, str(REPO))
    from bench.throughput import load_corpus  # PUD-100 sentences first, then TransAlign

    return load_corpus(n)[0]


def bench_job(n: int) -> None:
    sentences = _sentences(n)
    with tempfile.TemporaryDirectory(prefix="ptoie-job-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for i in range(0, len(sentences), 20):
            (corpus / f"doc{i // 20:04d}.txt").write_text("\n\n".join(sentences[i:i + 20]) + "\n",
                                                          encoding="utf-8")
        job = [str(REPO / ".venv/bin/ptoie-batch"), str(corpus), "--out", f"{tmp}/kg.ttl",
               "--overwrite", "--progress", "never"]
        alone = [sys.executable, __file__, "_extractor", str(corpus)]
        times = {"job": [], "extractor": []}
        for _ in range(2):  # interleaved: job, extractor, job, extractor
            for name, command in (("job", job), ("extractor", alone)):
                began = time.perf_counter()
                out = subprocess.run(command, capture_output=True, text=True)
                times[name].append(time.perf_counter() - began)
                if out.returncode not in (0, 3):
                    sys.exit(f"{name} failed:\n{out.stderr[-2000:]}")
                if name == "job":
                    print(out.stdout.strip().splitlines()[0], "|", next(
                        (l.strip() for l in out.stdout.splitlines() if "workers" in l), ""))
    best = {name: len(sentences) / min(values) for name, values in times.items()}
    print(f"{len(sentences)} sentences; best of 2, whole command (model load and Ray start included):")
    print(f"  ptoie-batch, default flags: {best['job']:.2f} sentences/s")
    print(f"  Extractor alone (all cores): {best['extractor']:.2f} sentences/s")
    print(f"  ratio job / Extractor: {best['job'] / best['extractor']:.2f}")


def _extractor_alone(corpus: Path) -> None:
    """Child process: the same sentences (the job's splitter) through one Extractor."""
    from ptoie import Extractor
    from ptoie.sentences import split_sentences

    sentences = [s for path in sorted(corpus.glob("*.txt"))
                 for s in split_sentences(path.read_text(encoding="utf-8"), max_chars=600).sentences]
    with Extractor(n_threads=os.cpu_count()) as ex:
        ex.extract_batch(sentences)


def main() -> None:
    if sys.argv[1:2] == ["_one"]:
        rows, shard_rows, work, max_graph = sys.argv[2:6]
        return _one_size(int(rows), int(shard_rows), Path(work), int(max_graph))
    if sys.argv[1:2] == ["_extractor"]:
        return _extractor_alone(Path(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    outputs = sub.add_parser("outputs", help="the graph stage at 10k / 100k / 1M triples")
    outputs.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    outputs.add_argument("--shard-rows", type=int, default=40)
    outputs.add_argument("--max-graph-triples", type=int, default=200_000)
    job = sub.add_parser("job", help="ptoie-batch defaults vs the Extractor alone")
    job.add_argument("--sentences", type=int, default=2000)
    args = parser.parse_args()
    if args.command == "outputs":
        bench_outputs(args.sizes, args.shard_rows, args.max_graph_triples)
    else:
        bench_job(args.sentences)


if __name__ == "__main__":
    main()
