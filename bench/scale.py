"""Scale of the batch job, measured in one run (a script, not a test).

    .venv/bin/python bench/scale.py outputs [--sizes 10000 100000 1000000] [--shard-rows 40]
    .venv/bin/python bench/scale.py job [--sentences 2000]

``outputs``: the graph stage (``ptoie.graph.build.build_graph``, the code of ``ptoie-batch`` and
``ptoie-kg``) on synthetic triples in the triple schema, written as Parquet shards of
``--shard-rows`` rows (the job's default batch of 32 sentences makes shards of about 40 triples).
Each size runs in a fresh process, so its peak RSS is its own; the shards are written before the
clock starts. Printed per size: seconds of a first build of the streamed outputs (RDF file,
Oxigraph store, picture), then of the NetworkX outputs (GraphML, node-link: written only up to
``--max-graph-triples``, 200,000 by default), their sum (every default output), the peak RSS, a
rebuild with nothing changed, and an incremental build after 1 % more shards; then the growth
exponent log(t2/t1)/log(n2/n1) of the streamed outputs between the last two sizes (the same
outputs at both sizes).

``kg``: the ``ptoie-kg`` command, every default output, on ``--rows`` synthetic triples written as
each of ``--layouts`` numbers of Parquet files (default 1 file, and 20 files of 50,000 rows at
1M): wall time and the process's peak RSS.

    .venv/bin/python bench/scale.py kg [--rows 1000000] [--layouts 1 20]

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
    import pyarrow.parquet as pq

    from ptoie.files import records_table

    rng = random.Random(seed + start)
    directory.mkdir(parents=True, exist_ok=True)
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
        paths.append(directory / f"part-{first:09d}.parquet")  # as the job writes them, less the fsync
        pq.write_table(records_table(records), paths[-1], compression="zstd")
    return paths


def _one_size(rows: int, shard_rows: int, work: Path, max_graph_triples: int) -> None:
    """Child process: one size, prints a JSON line."""
    from dataclasses import replace

    from ptoie.graph.build import GraphOutputs, build_graph

    shards = work / "kg.parquet"
    sources = synthetic_shards(shards, rows, shard_rows)
    outputs = GraphOutputs.beside(work / "kg.ttl", max_graph_triples=max_graph_triples)
    streamed = replace(outputs, graphml=None, node_link=None)
    cache = shards / "_kg"
    result = {"rows": rows, "shards": len(sources)}

    def timed(name: str, which: GraphOutputs, paths: list[Path]):
        began = time.perf_counter()
        report = build_graph(paths, which, cache=cache)
        result[name] = time.perf_counter() - began
        return report

    timed("streamed_s", streamed, sources)            # RDF file, Oxigraph store, picture
    report = timed("networkx_s", outputs, sources)    # + GraphML and node-link (or their skip)
    result["skipped"] = sorted(report.skipped)
    result["counts"] = report.counts
    again = timed("unchanged_s", outputs, sources)
    result["rewritten_when_unchanged"] = again.written
    more = synthetic_shards(shards, max(rows // 100, shard_rows), shard_rows, start=rows)
    timed("plus_1pct_s", outputs, sources + more)
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
        total = result["streamed_s"] + result["networkx_s"]
        print(f"{rows:>9,} triples, {result['shards']:>6,} shards: every default output "
              f"{total:6.1f} s (RDF + store + picture {result['streamed_s']:6.1f} s, then GraphML + "
              f"node-link {result['networkx_s']:5.1f} s{' (not written: over the bound)' if result['skipped'] else ''}), "
              f"peak RSS {result['peak_rss_mb']:>5,} MB; unchanged rerun {result['unchanged_s']:4.1f} s "
              f"(rewrote {result['rewritten_when_unchanged'] or 'nothing'}); +1 % shards "
              f"{result['plus_1pct_s']:5.1f} s; RDF {result['rdf_mb']} MB; counts {result['counts']}",
              flush=True)
    if len(results) >= 2:
        a, b = results[-2], results[-1]
        exponent = math.log(b["streamed_s"] / a["streamed_s"]) / math.log(b["rows"] / a["rows"])
        print(f"growth exponent of RDF + store + picture, {a['rows']:,} -> {b['rows']:,} triples: "
              f"{exponent:.2f}")


def _write_layout(rows: int, files: int, directory: Path) -> None:
    """Child process: ``rows`` synthetic triples as ``files`` Parquet files of equal size."""
    synthetic_shards(directory, rows, -(-rows // files))


def bench_kg(rows: int, layouts: list[int]) -> None:
    """``ptoie-kg`` (every default output) as a process on ``rows`` triples written as each
    number of files in ``layouts``: wall time and the process's peak RSS (``wait4``)."""
    for files in layouts:
        with tempfile.TemporaryDirectory(prefix="ptoie-kg-") as tmp:
            data = Path(tmp) / "table"
            subprocess.run([sys.executable, __file__, "_layout", str(rows), str(files), str(data)],
                           check=True)
            began = time.perf_counter()
            process = subprocess.Popen([sys.executable, "-m", "ptoie.cli.kg", str(data), "--out",
                                        str(Path(tmp) / "kg.ttl")], cwd=REPO,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            output = process.stdout.read()  # type: ignore[union-attr]
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - began
            if status:
                sys.exit(f"ptoie-kg failed on {files} file(s):\n{output}")
            print(f"ptoie-kg, {rows:,} triples in {files} file(s) of {-(-rows // files):,} rows: "
                  f"{seconds:.1f} s, peak RSS {usage.ru_maxrss // 1024:,} MB; "
                  f"{output.splitlines()[0]}", flush=True)


# -- job vs Extractor -------------------------------------------------------------------------
def _sentences(n: int) -> list[str]:
    sys.path.insert(0, str(REPO))
    from bench.throughput import load_corpus  # PUD-100 sentences first, then TransAlign

    return load_corpus(n)[0]


def bench_job(n: int, repeats: int) -> None:
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
        for _ in range(repeats):  # interleaved: job, extractor, job, extractor, ...
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
    print(f"{len(sentences)} sentences; best of {repeats}, whole command (model load and Ray start "
          f"included):")
    print(f"  ptoie-batch, default flags: {best['job']:.2f} sentences/s")
    print(f"  Extractor alone (all cores): {best['extractor']:.2f} sentences/s")
    print(f"  ratio job / Extractor: {best['job'] / best['extractor']:.2f}")


def _extractor_alone(corpus: Path) -> None:
    """Child process: the same sentences (the job's splitter) through one Extractor."""
    from ptoie import Extractor
    from ptoie.text.sentences import split_sentences

    sentences = [s for path in sorted(corpus.glob("*.txt"))
                 for s in split_sentences(path.read_text(encoding="utf-8"), max_chars=600).sentences]
    with Extractor(n_threads=os.cpu_count()) as ex:
        ex.extract_batch(sentences)


def main() -> None:
    if sys.argv[1:2] == ["_one"]:
        rows, shard_rows, work, max_graph = sys.argv[2:6]
        return _one_size(int(rows), int(shard_rows), Path(work), int(max_graph))
    if sys.argv[1:2] == ["_layout"]:
        return _write_layout(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
    if sys.argv[1:2] == ["_extractor"]:
        return _extractor_alone(Path(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    outputs = sub.add_parser("outputs", help="the graph stage at 10k / 100k / 1M triples")
    outputs.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    outputs.add_argument("--shard-rows", type=int, default=40)
    outputs.add_argument("--max-graph-triples", type=int, default=200_000)
    kg_cmd = sub.add_parser("kg", help="ptoie-kg on one table written as 1 or many files")
    kg_cmd.add_argument("--rows", type=int, default=1_000_000)
    kg_cmd.add_argument("--layouts", type=int, nargs="+", default=[1, 20],
                        help="numbers of Parquet files the rows are written as")
    job = sub.add_parser("job", help="ptoie-batch defaults vs the Extractor alone")
    job.add_argument("--sentences", type=int, default=2000)
    job.add_argument("--repeats", type=int, default=2, help="interleaved runs of each command")
    args = parser.parse_args()
    if args.command == "outputs":
        bench_outputs(args.sizes, args.shard_rows, args.max_graph_triples)
    elif args.command == "kg":
        bench_kg(args.rows, args.layouts)
    else:
        bench_job(args.sentences, args.repeats)


if __name__ == "__main__":
    main()
