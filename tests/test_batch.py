"""The batch job: outputs, resume, crash safety, bad input, exit codes, CLI.

Job-logic tests inject a deterministic fake extractor through the in-process worker pool (same
ExtractorWorker code as the Ray actors). The slow tests run the real ``ptoie-batch`` command with
Ray workers and the shipped GGUF model, and ``kill -9`` it in the middle of a run.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import networkx as nx
import pyarrow.dataset as ds
import pytest
from pyoxigraph import Store
from rdflib import RDF, Graph, URIRef

from ptoie.cli.batch import main
from ptoie.batch import (EXIT_OK, EXIT_SKIPPED, MAX_TRIES, BatchConfig, BatchUsageError,
                         ExtractorWorker, FaultInjection,
                         InProcessWorkerPool, OutputLock, PreparedDocument, ShardStore,
                         group_batches, run_batch, size_workers)
from ptoie.extract.config import ModelConfig
from ptoie.extract.extractor import SentenceResult
from ptoie.triple import Triple

REPO = Path(__file__).resolve().parents[1]


class FakeExtractor:
    """Deterministic stand-in: "A B resto." -> (A, B, resto); a sentence with EXPLODE raises."""

    model_id = "fake.gguf"

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def extract_batch(self, sentences):
        results = []
        for sentence in sentences:
            if "EXPLODE" in sentence:
                raise RuntimeError("the model crashed")
            words = sentence.rstrip(".").split()
            triples = [Triple(words[0], words[1], " ".join(words[2:]), 0.75)] if len(words) >= 3 else []
            raw = "\n".join(" | ".join(t.parts) for t in triples) or "NENHUMA"
            results.append(SentenceResult(sentence=sentence, triples=triples, raw_output=raw))
        return results


def fake_pool(config: BatchConfig, **_announce) -> InProcessWorkerPool:
    return InProcessWorkerPool(ExtractorWorker(config.worker_model(), config.decoding, FakeExtractor))


def write_corpus(root: Path) -> Path:
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    (corpus / "a.txt").write_text("Lisboa fica em Portugal. O Porto fica no Norte.\n\nFim.",
                                  encoding="utf-8")
    lines = [{"id": f"doc-{i}", "text": f"Cidade{i} tem rio{i}. Rio{i} corre para o mar."}
             for i in range(5)]
    (corpus / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    (corpus / "c.jsonl.gz").write_bytes(gzip.compress(
        json.dumps({"text": "Camões escreveu Os Lusíadas."}).encode() + b"\n"))
    return corpus


def make_config(tmp_path: Path, corpus: Path, **overrides) -> BatchConfig:
    settings = dict(inputs=(corpus,), out=tmp_path / "out" / "kg.ttl",
                    model=ModelConfig(model_path="embedded:smollm2"), batch_sentences=3, progress="never")
    return BatchConfig(**(settings | overrides))


def with_decoding(config: BatchConfig, **settings) -> BatchConfig:
    return replace(config, decoding=replace(config.decoding, **settings))


def triple_rows(config: BatchConfig) -> list[tuple]:
    table = ds.dataset(config.parquet_path, format="parquet").to_table()
    return sorted((r["doc_id"], r["sentence_id"], r["extraction_index"], r["arg1"], r["rel"],
                   r["arg2"]) for r in table.to_pylist())


def output_counts(config: BatchConfig) -> dict[str, int]:
    """Triples in each output, read back independently (rdflib for the RDF file, SPARQL on the
    store, networkx for the graphs)."""
    outputs = config.graph_outputs
    rdf = Graph().parse(config.out, format="turtle" if config.out.suffix == ".ttl" else "nt")
    node_link = json.loads(outputs.node_link.read_text(encoding="utf-8"))
    [count] = Store.read_only(str(outputs.store)).query(
        "SELECT (COUNT(?s) AS ?n) WHERE { ?s a <https://w3id.org/ptoie/vocab#Extraction> }")
    return {"parquet": len(triple_rows(config)),
            "rdf": len(set(rdf.subjects(RDF.type, RDF.Statement))),
            "store": int(count["n"].value),
            "graphml": nx.read_graphml(outputs.graphml, force_multigraph=True).number_of_edges(),
            "node-link": len(node_link["edges"])}


def manifest(config: BatchConfig) -> dict[str, tuple]:
    lines = (config.parquet_path / ShardStore.MANIFEST).read_text(encoding="utf-8").splitlines()
    entries = {e["doc_id"]: e for e in map(json.loads, lines)}
    return {d: (e["sentences"], e["triples"], e["outputs_sha256"]) for d, e in entries.items()}


# -- job logic (fake extractor, no Ray) -------------------------------------------------------
def test_run_writes_parquet_rdf_and_graphs_with_the_same_triples(tmp_path):
    config = make_config(tmp_path, write_corpus(tmp_path))
    summary = run_batch(config, pool_factory=fake_pool)
    assert summary.exit_code == EXIT_OK
    assert (summary.documents, summary.documents_processed, summary.documents_skipped) == (7, 7, 0)
    assert summary.sentences == 3 + 5 * 2 + 1
    # every sentence of >= 3 words gives one triple; "Fim." gives none
    assert summary.triples == summary.triples_total == 13
    assert output_counts(config) == dict.fromkeys(["parquet", "rdf", "store", "graphml", "node-link"], 13)
    assert summary.counts == output_counts(config)
    assert "Lisboa" in config.graph_outputs.view.read_text(encoding="utf-8")
    assert ("doc-3", 1, 0, "Rio3", "corre", "para o mar") in triple_rows(config)
    assert ("a.txt", 1, 0, "O", "Porto", "fica no Norte") in triple_rows(config)
    assert ("c.jsonl.gz:1", 0, 0, "Camões", "escreveu", "Os Lusíadas") in triple_rows(config)
    assert config.errors_path.read_text() == ""
    shards = sorted(p.name for p in config.parquet_path.glob("part-*.parquet"))
    assert len(shards) == 4  # batches of >= 3 sentences: [a.txt], [doc-0, doc-1], [doc-2, doc-3], [doc-4, c]
    assert "kg.parquet" in summary.render() and "13 in the graph" in summary.render()


def test_rerun_resumes_and_only_new_or_changed_documents_are_extracted(tmp_path):
    corpus = write_corpus(tmp_path)
    config = make_config(tmp_path, corpus)
    run_batch(config, pool_factory=fake_pool)
    first = triple_rows(config)

    def no_pool(_config):
        raise AssertionError("nothing to extract: no worker pool (no Ray, no model) is started")

    outputs = config.graph_outputs.named()
    written = {name: path.stat().st_mtime_ns for name, path in outputs.items() if path.is_file()}
    again = run_batch(config, pool_factory=no_pool)
    assert (again.documents_processed, again.documents_resumed, again.sentences) == (0, 7, 0)
    assert triple_rows(config) == first and again.triples_total == len(first)
    # nothing extracted: no graph output is rewritten
    assert {name: outputs[name].stat().st_mtime_ns for name in written} == written

    (corpus / "new.txt").write_text("Braga fica no Minho.", encoding="utf-8")
    (corpus / "a.txt").write_text("Évora fica no Alentejo.", encoding="utf-8")  # changed content
    third = run_batch(config, pool_factory=fake_pool)
    assert third.documents_processed == 2 and third.documents_resumed == 6
    rows = triple_rows(config)
    assert [r for r in rows if r[0] == "a.txt"] == [("a.txt", 0, 0, "Évora", "fica", "no Alentejo")]
    assert ("new.txt", 0, 0, "Braga", "fica", "no Minho") in rows
    assert len(rows) == len(first) - 2 + 2  # a.txt had 2 triples, now 1; new.txt adds 1
    assert output_counts(config) == dict.fromkeys(["parquet", "rdf", "store", "graphml", "node-link"], len(rows))


def test_crash_after_a_shard_is_written_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path)
    clean = make_config(tmp_path / "clean", corpus)
    run_batch(clean, pool_factory=fake_pool)

    crashed = make_config(tmp_path / "crashed", corpus)
    real_commit = ShardStore.commit
    calls = []

    def commit_then_die(self, table, entries):
        calls.append(1)
        if len(calls) == 3:  # the shard is renamed into place, the manifest line never written
            from ptoie.files import write_parquet_shard
            write_parquet_shard(table, self.directory, "part-crash-000001.parquet")
            raise KeyboardInterrupt
        return real_commit(self, table, entries)

    monkeypatch.setattr(ShardStore, "commit", commit_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_batch(crashed, pool_factory=fake_pool)
    monkeypatch.setattr(ShardStore, "commit", real_commit)
    # a kill in the middle of the manifest append leaves a partial last line
    with open(crashed.parquet_path / ShardStore.MANIFEST, "a", encoding="utf-8") as fh:
        fh.write('{"doc_id": "doc-9", "sha2')
    (crashed.parquet_path / ".part-x.parquet.tmp-1").write_bytes(b"half a shard")

    resumed = run_batch(crashed, pool_factory=fake_pool)
    assert resumed.exit_code == EXIT_OK and resumed.documents_resumed == 3
    assert triple_rows(crashed) == triple_rows(clean)
    assert manifest(crashed) == manifest(clean)
    assert not (crashed.parquet_path / "part-crash-000001.parquet").exists()
    assert not list(crashed.parquet_path.glob(".part-*"))
    assert output_counts(crashed) == output_counts(clean)


def test_bad_input_is_skipped_recorded_and_exits_3(tmp_path, capsys):
    corpus = write_corpus(tmp_path)
    (corpus / "latin1.txt").write_bytes("Ola\nSão Paulo é grande.".encode("latin-1"))
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02")
    (corpus / "empty.txt").write_text("")
    (corpus / "huge.jsonl").write_bytes(b'{"text": "' + b"a " * 600_000 + b'"}\n'
                                        + b'{"text": "Depois vem esta frase."}\n')
    (corpus / "boom.txt").write_text("Isto vai EXPLODE agora.", encoding="utf-8")
    (corpus / "long.txt").write_text("Uma frase curta. " + "Palavra" + "x" * 700 + ".",
                                     encoding="utf-8")
    config = make_config(tmp_path, corpus, batch_sentences=1)
    summary = run_batch(config, pool_factory=fake_pool)

    assert summary.exit_code == EXIT_SKIPPED
    records = [json.loads(line) for line in config.errors_path.read_text().splitlines()]
    by_kind = {r["kind"]: r for r in records}
    assert by_kind["undecodable"]["source"].endswith("latin1.txt:2")
    assert by_kind["binary"]["source"].endswith("binary.txt:1")
    assert by_kind["empty"]["source"].endswith("empty.txt")
    assert by_kind["line_too_long"]["source"].endswith("huge.jsonl:1")
    assert by_kind["extraction_failed"]["doc_id"] == "boom.txt"
    assert "the model crashed" in by_kind["extraction_failed"]["message"]
    assert by_kind["sentence_too_long"]["skipped"] == "sentence"
    assert summary.documents_skipped == 5 and summary.sentences_skipped == 1
    err = capsys.readouterr().err
    assert "skipped document" in err and "latin1.txt:2" in err and "huge.jsonl:1" in err
    # everything else was processed
    rows = triple_rows(config)
    assert ("huge.jsonl:2", 0, 0, "Depois", "vem", "esta frase") in rows
    assert ("long.txt", 0, 0, "Uma", "frase", "curta") in rows
    assert summary.documents_processed == 7 + 2  # corpus + huge.jsonl:2 + long.txt
    # the failed document is retried by the next run
    (corpus / "boom.txt").write_text("Isto já não explode.", encoding="utf-8")
    assert run_batch(config, pool_factory=fake_pool).documents_processed == 1


def test_bad_input_at_the_door_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    out = tmp_path / "out" / "kg.ttl"
    assert main([str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == f"ptoie-batch: error: {tmp_path / 'nowhere'}: no such file or directory"

    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("notes.md", "paper.pdf", "sheet.xlsx"):
        (docs / name).write_text("Lisboa fica em Portugal.", encoding="utf-8")
    (docs / "empty.txt").write_text("", encoding="utf-8")
    for argv in ([str(docs), "--out", str(out)], [str(docs), "--out", str(out), "--dry-run"]):
        assert main(argv) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"ptoie-batch: error: no document to extract in {docs}: 1 skipped "
                               f"(1 empty; first: {docs / 'empty.txt'}: empty document")
        assert ("3 files of types not read: " + ", ".join(
            str(docs / n) for n in ("notes.md", "paper.pdf", "sheet.xlsx"))) in line
        assert line.endswith("reads .txt, .jsonl, .parquet, .html/.htm or .warc (optionally .gz)")
    assert not out.parent.exists()  # no Parquet, RDF, store, graph or errors file


ENGLISH = ("The European Central Bank raised interest rates again on Thursday. Markets had "
           "expected the decision.")
SPANISH = ("El Banco Central Europeo subió los tipos de interés el jueves. Los mercados ya "
           "esperaban la decisión.")


def test_other_languages_are_skipped_and_recorded_and_ignored_files_named(tmp_path):
    corpus = write_corpus(tmp_path)
    (corpus / "en.txt").write_text(ENGLISH, encoding="utf-8")
    (corpus / "es.txt").write_text(SPANISH, encoding="utf-8")
    (corpus / "README.md").write_text("# notes", encoding="utf-8")
    config = make_config(tmp_path, corpus)
    summary = run_batch(config, pool_factory=fake_pool)
    assert summary.exit_code == EXIT_SKIPPED
    assert (summary.documents_processed, summary.documents_skipped) == (7, 2)  # Portuguese only
    records = [json.loads(line) for line in config.errors_path.read_text().splitlines()]
    assert [(Path(r["source"]).name, r["kind"]) for r in records] == [("en.txt", "language"),
                                                                      ("es.txt", "language")]
    assert "reads as 'en'" in records[0]["message"] and "--languages pt,en" in records[0]["message"]
    assert "reads as 'es'" in records[1]["message"]
    assert summary.ignored == f"1 file of types not read: {corpus / 'README.md'}"
    assert f"ignored    1 file of types not read: {corpus / 'README.md'}" in summary.render()
    assert not {r[0] for r in triple_rows(config)} & {"en.txt", "es.txt"}

    other = run_batch(replace(config, languages=("pt", "en")), pool_factory=fake_pool)
    assert (other.documents_processed, other.documents_skipped) == (1, 1)  # en.txt extracted
    everything = run_batch(replace(config, languages=None), pool_factory=fake_pool)
    assert (everything.documents_processed, everything.exit_code) == (1, EXIT_OK)
    assert {"en.txt", "es.txt"} <= {r[0] for r in triple_rows(config)}


def test_a_batch_that_raises_is_retried_document_by_document(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    lines = [{"id": "ok-1", "text": "Lisboa fica em Portugal."},
             {"id": "boom", "text": "Isto vai EXPLODE agora."},
             {"id": "ok-2", "text": "Braga fica no Minho."}]
    (corpus / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    config = make_config(tmp_path, corpus, batch_sentences=10)   # one batch of three documents
    summary = run_batch(config, pool_factory=fake_pool)
    assert (summary.exit_code, summary.documents_processed, summary.documents_skipped) == (
        EXIT_SKIPPED, 2, 1)
    [record] = [json.loads(line) for line in config.errors_path.read_text().splitlines()]
    assert (record["doc_id"], record["kind"]) == ("boom", "extraction_failed")
    assert {r[0] for r in triple_rows(config)} == {"ok-1", "ok-2"}


def test_a_full_disk_stops_the_job_with_one_line_and_a_rerun_gives_the_same_outputs(
        tmp_path, monkeypatch, capsys):
    """ENOSPC injected into the second shard write (half the shard written) and into a manifest
    append (half the lines written): each stops the job with exit 4 and one line, leaving no
    temporary shard, no unreferenced shard and no partial manifest line; a rerun completes."""
    import errno

    import ptoie.batch.store as store_module
    import ptoie.files as files_module

    corpus = write_corpus(tmp_path)
    clean = make_config(tmp_path / "clean", corpus)
    run_batch(clean, pool_factory=fake_pool)
    full = make_config(tmp_path / "full", corpus)
    argv = [str(corpus), "--out", str(full.out), "--model", "embedded:smollm2",
            "--batch-sentences", "3", "--progress", "never"]
    monkeypatch.setattr("ptoie.cli.batch.run_batch", lambda config: run_batch(config, pool_factory=fake_pool))
    real_write_table, real_write = files_module.pq.write_table, os.write
    calls = []

    def write_half_then_fail(table, where, **kwargs):
        calls.append(where)
        if len(calls) == 2:
            Path(where).write_bytes(b"PAR1" + b"\0" * 100)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(where))
        return real_write_table(table, where, **kwargs)

    def append_half_then_fail(fd, data):
        if data.startswith(b'{"doc_id"') and data.count(b"\n") > 1:
            real_write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    for inject in ((files_module.pq, "write_table", write_half_then_fail),
                   (store_module.os, "write", append_half_then_fail)):
        with monkeypatch.context() as patch:
            patch.setattr(*inject)
            assert main(argv) == 4
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("ptoie-batch: error: stopped storing extracted triples: No space "
                               "left on device") and "rerun the same command to resume" in line
        files = sorted(p.name for p in full.parquet_path.iterdir())
        assert not [f for f in files if f.startswith(".")]            # no temporary shard
        lines = (full.parquet_path / ShardStore.MANIFEST).read_bytes().decode().splitlines(True)
        assert all(line.endswith("\n") for line in lines)            # no partial line
        referenced = {json.loads(line)["shard"] for line in lines}
        assert {f for f in files if f.startswith("part-")} == referenced  # no orphan shard
    assert main(argv) == 0
    assert triple_rows(full) == triple_rows(clean) and manifest(full) == manifest(clean)
    assert output_counts(full) == output_counts(clean)


def test_a_real_full_disk_stops_the_job_and_a_rerun_after_freeing_space_completes(
        tmp_path, monkeypatch, capsys):
    """The same on a real full disk: a 600 KB tmpfs (mounting one needs root; elsewhere the
    injected test above covers the path), grown to 20 MB for the rerun."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)],
                           capture_output=True, text=True)
    if mount.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({mount.stderr.strip()})")
    try:
        corpus = write_corpus(tmp_path)
        clean = make_config(tmp_path / "clean", corpus)
        run_batch(clean, pool_factory=fake_pool)
        full = make_config(disk, corpus)
        argv = [str(corpus), "--out", str(full.out), "--model", "embedded:smollm2",
                "--batch-sentences", "3", "--progress", "never"]
        monkeypatch.setattr("ptoie.cli.batch.run_batch",
                            lambda config: run_batch(config, pool_factory=fake_pool))
        assert main(argv) == 4
        [line] = capsys.readouterr().err.strip().splitlines()
        assert "No space left on device" in line and "rerun the same command to resume" in line
        assert not list(full.parquet_path.glob(".part-*"))
        subprocess.run(["mount", "-o", "remount,size=20m", str(disk)], check=True)
        assert main(argv) == 0
        assert triple_rows(full) == triple_rows(clean) and manifest(full) == manifest(clean)
        assert output_counts(full) == output_counts(clean)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_dry_run_counts_without_a_model_and_limit(tmp_path):
    corpus = write_corpus(tmp_path)
    config = make_config(tmp_path, corpus, dry_run=True, model=ModelConfig(model_path="/nonexistent.gguf"))
    summary = run_batch(config, pool_factory=None)  # no pool, no model, no Ray
    assert (summary.documents, summary.sentences, summary.exit_code) == (7, 14, EXIT_OK)
    assert not config.parquet_path.exists()
    limited = run_batch(replace(config, limit=2))
    assert (limited.documents, limited.sentences) == (2, 3 + 2)
    summary = run_batch(replace(config, dry_run=False, model=ModelConfig(model_path="embedded:smollm2"), limit=3),
                        pool_factory=fake_pool)
    assert summary.documents == 3
    assert sorted({r[0] for r in triple_rows(config)}) == ["a.txt", "doc-0", "doc-1"]


def test_batches_are_a_function_of_the_corpus_order():
    docs = [PreparedDocument(doc_id=str(i), source="", sha256="", sentences=["s"] * n, too_long=[])
            for i, n in enumerate([1, 1, 2, 5, 0, 1])]
    assert [[d.doc_id for d in b] for b in group_batches(docs, 3)] == [["0", "1", "2"], ["3"], ["5"]]


def test_resume_with_other_settings_is_refused(tmp_path):
    config = make_config(tmp_path, write_corpus(tmp_path))
    run_batch(config, pool_factory=fake_pool)
    with pytest.raises(BatchUsageError, match=r"temperature: 0\.2 -> 0\.7.*--overwrite"):
        run_batch(with_decoding(config, temperature=0.7), pool_factory=fake_pool)
    fresh = run_batch(replace(with_decoding(config, temperature=0.7), overwrite=True), pool_factory=fake_pool)
    assert fresh.documents_processed == 7 and fresh.documents_resumed == 0


def test_a_run_from_before_end_bias_resumes_with_the_paper_decoding_only(tmp_path):
    config = with_decoding(make_config(tmp_path, write_corpus(tmp_path)), end_bias=0.0, require_spans=False)
    run_batch(config, pool_factory=fake_pool)
    job = config.parquet_path / "_job.json"
    settings = json.loads(job.read_text(encoding="utf-8"))
    del settings["end_bias"], settings["require_spans"]        # as written before the settings existed
    job.write_text(json.dumps(settings), encoding="utf-8")
    with pytest.raises(BatchUsageError, match=r"end_bias: 0\.0 -> -2\.0"):
        run_batch(with_decoding(config, end_bias=-2.0), pool_factory=fake_pool)
    with pytest.raises(BatchUsageError, match=r"require_spans: False -> True"):
        run_batch(with_decoding(config, require_spans=True), pool_factory=fake_pool)
    assert run_batch(config, pool_factory=fake_pool).documents_resumed == 7


def test_a_run_of_the_default_model_records_and_sends_the_model_it_ran(tmp_path):
    """The shipped default is named once, when the job starts: the job settings record it and
    every worker gets it, so a resume after the default changed is refused, not mixed."""
    sent = []

    def pool(config, **announce):
        sent.append(config.worker_model())
        return fake_pool(config, **announce)

    config = make_config(tmp_path, write_corpus(tmp_path), model=ModelConfig())
    run_batch(config, pool_factory=pool)
    job = config.parquet_path / "_job.json"
    settings = json.loads(job.read_text(encoding="utf-8"))
    assert settings["model_path"] == sent[0].model_path == "embedded:gemma3-270m"
    assert settings["lora_path"] == sent[0].lora_path
    assert Path(settings["lora_path"]).name == "ptoie-gemma3-270m-lora-f16.gguf"
    job.write_text(json.dumps(settings | {"model_path": "embedded:smollm2"}), encoding="utf-8")
    with pytest.raises(BatchUsageError, match="model_path: 'embedded:smollm2' -> 'embedded:gemma3-270m'"):
        run_batch(config, pool_factory=pool)


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    corpus = write_corpus(tmp_path)
    assert main([str(corpus), "--out", str(tmp_path / "kg.rdf")]) == 2
    assert "--out" in capsys.readouterr().err
    assert main([str(corpus), "--out", str(tmp_path / "kg.ttl"), "--model", "/no/model.gguf"]) == 2
    assert "model file not found: /no/model.gguf" in capsys.readouterr().err
    assert main([str(corpus), "--out", str(tmp_path / "kg.ttl"), "--workers", "0"]) == 2
    assert main([str(corpus), "--out", str(tmp_path / "kg.ttl"), "--end-bias", "1"]) == 2
    assert "--end-bias must be <= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([str(corpus)])  # --out missing: argparse
    assert exc.value.code == 2
    assert main([str(corpus), "--out", str(tmp_path / "kg.ttl"), "--dry-run"]) == 0
    assert "sentences  14" in capsys.readouterr().out


def test_help_documents_exit_codes():
    result = subprocess.run([sys.executable, "-m", "ptoie.cli.batch", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "3  done, but some input skipped" in result.stdout and "2  usage error" in result.stdout
    assert "4  stopped: the output could not be written" in result.stdout


def test_web_pages_keep_their_url_and_title_in_parquet_and_rdf(tmp_path):
    from test_corpus_web import AMAZONAS, CANONICAL

    corpus = tmp_path / "web"
    corpus.mkdir()
    (corpus / "amazonas.html").write_text(AMAZONAS, encoding="utf-8")
    config = make_config(tmp_path, corpus)
    assert run_batch(config, pool_factory=fake_pool).exit_code == EXIT_OK
    table = ds.dataset(config.parquet_path, format="parquet").to_table()
    assert table.num_rows > 0
    assert set(table.column("doc_id").to_pylist()) == set(table.column("doc_url").to_pylist()) == {CANONICAL}
    [title] = set(table.column("doc_title").to_pylist())
    assert "Amazonas" in title
    rdf = Graph().parse(config.out, format="turtle")
    [(page, url)] = rdf.subject_objects(URIRef("https://schema.org/url"))
    assert str(url) == CANONICAL
    assert "Amazonas" in str(rdf.value(page, URIRef("http://purl.org/dc/terms/title")))


def test_a_second_job_on_the_same_output_is_refused_and_a_dead_holder_does_not_block(tmp_path, capsys):
    config = make_config(tmp_path, write_corpus(tmp_path))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from ptoie.batch import OutputLock; OutputLock(Path(sys.argv[1])).acquire(); "
         "print('locked', flush=True); time.sleep(120)", str(config.parquet_path)],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        argv = [str(config.inputs[0]), "--out", str(config.out), "--model", "embedded:smollm2"]
        assert main(argv) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert f"pid {holder.pid} on host" in line and "in use by a running ptoie-batch" in line
        assert not (config.parquet_path / ShardStore.MANIFEST).exists()   # nothing touched
    finally:
        holder.kill()   # SIGKILL: the lock file stays behind, the lock does not
        holder.wait()
    assert (config.parquet_path / OutputLock.NAME).exists()
    assert run_batch(config, pool_factory=fake_pool).exit_code == EXIT_OK


def test_workers_auto_rule():
    gib = 2**30
    assert size_workers({"CPU": 2.0, "memory": 16 * gib}, threads_per_worker=1,
                        gpus_per_worker=0) == (2, "2 CPUs / 1 thread(s) per worker")
    assert size_workers({"CPU": 16.0, "memory": 64 * gib}, threads_per_worker=4,
                        gpus_per_worker=0)[0] == 4
    assert size_workers({"CPU": 16.0, "GPU": 1.0, "memory": 64 * gib}, threads_per_worker=1,
                        gpus_per_worker=0.25) == (4, "1 GPUs / 0.25 GPU per worker")
    assert size_workers({"CPU": 64.0, "memory": 3.5 * gib}, threads_per_worker=1,
                        gpus_per_worker=0)[0] == 3          # memory-bound
    assert size_workers({"CPU": 1.0}, threads_per_worker=4, gpus_per_worker=0)[0] == 1


# -- the real command: Ray workers, the shipped GGUF model, kill -9 ---------------------------
SMOLLM2_FLAGS = ["--model", "embedded:smollm2", "--lora", str(REPO / "models" / "ptoie-smollm2-135m-lora-f16.gguf")]
"""The job mechanics run on the smaller SmolLM2 adapter (the default model has its own tests)."""
REAL_FLAGS = [*SMOLLM2_FLAGS, "--temperature", "0", "--seed", "0", "--max-tokens", "24", "--n-parallel", "4",
              "--batch-sentences", "2", "--workers", "1", "--progress", "never"]


def _command(corpus: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "ptoie.cli.batch", str(corpus), "--out", str(out), *REAL_FLAGS]


def _real_corpus(root: Path) -> Path:
    corpus = root / "real"
    corpus.mkdir()
    (corpus / "geo.txt").write_text(
        "Lisboa é a capital de Portugal. O rio Tejo passa por Lisboa.", encoding="utf-8")
    records = [
        {"id": "machado", "text": "Machado de Assis escreveu Dom Casmurro. Ele nasceu no Rio de "
                                  "Janeiro."},
        {"id": "pessoa", "text": "Fernando Pessoa escreveu Mensagem. Pessoa morreu em 1935."},
        {"id": "cabral", "text": "Pedro Álvares Cabral chegou ao Brasil em 1500."},
        {"id": "camoes", "text": "Camões escreveu Os Lusíadas. O poema narra a viagem de Vasco "
                                 "da Gama."},
    ]
    (corpus / "docs.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                               for r in records), encoding="utf-8")
    return corpus


def _cleanup_group(process: subprocess.Popen) -> None:
    """Kill what is left of the process group the test started (Ray helpers of a killed driver)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def clean_real_run(tmp_path_factory) -> tuple[Path, BatchConfig]:
    """The uninterrupted run of the real command on ``_real_corpus`` (also its end-to-end test):
    the reference of the tests that kill it or its workers."""
    tmp_path = tmp_path_factory.mktemp("clean-real")
    corpus = _real_corpus(tmp_path)
    clean_out = tmp_path / "clean" / "kg.ttl"
    done = subprocess.run(_command(corpus, clean_out), cwd=REPO,
                          env=os.environ | {"PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    clean = replace(make_config(tmp_path, corpus), out=clean_out)
    assert "done in" in done.stdout and "documents  5 in corpus: 5 processed" in done.stdout
    counts = output_counts(clean)
    assert counts["parquet"] > 0, "the shipped model extracts triples from these sentences"
    assert set(counts.values()) == {counts["parquet"]}
    assert len(manifest(clean)) == 5
    return corpus, clean


@pytest.mark.slow
def test_real_job_killed_with_sigkill_resumes_to_the_uninterrupted_result(tmp_path, clean_real_run):
    corpus, clean = clean_real_run
    env = os.environ | {"PYTHONPATH": str(REPO)}
    counts = output_counts(clean)

    # the same command, killed with SIGKILL once the first batch is committed, then rerun
    killed_out = tmp_path / "killed" / "kg.ttl"
    killed_manifest = killed_out.parent / "kg.parquet" / ShardStore.MANIFEST
    process = subprocess.Popen(_command(corpus, killed_out), cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if killed_manifest.exists() and killed_manifest.read_text().count("\n") >= 1:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the run ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        _cleanup_group(process)
    finished_before = killed_manifest.read_text().count("\n")
    assert 1 <= finished_before < 5

    resumed = subprocess.run(_command(corpus, killed_out), cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    killed = replace(make_config(tmp_path, corpus), out=killed_out)
    assert manifest(killed) == manifest(clean)          # same raw outputs, sentence by sentence
    assert triple_rows(killed) == triple_rows(clean)    # no loss, no duplicates
    assert output_counts(killed) == counts


@pytest.mark.slow
def test_dying_workers_lose_nothing_and_a_poison_document_is_isolated(tmp_path, clean_real_run):
    """Real Ray workers (2) that die (os._exit, as the OOM killer would kill them) through the
    test-only fault injection of ``ExtractorWorker``: two deaths, each on its first meeting with a
    sentence -> everything extracted, the same raw outputs and triples as the uninterrupted run;
    a document that kills every worker it reaches -> only it skipped, recorded as worker_crashed
    with its tries, every other document extracted."""
    corpus, clean = clean_real_run
    flags = [*REAL_FLAGS[:REAL_FLAGS.index("--workers")], "--workers", "2", "--progress", "never"]
    once = tmp_path / "crashed-once"
    once.mkdir()

    def run(name: str, crash_env: dict[str, str]) -> tuple[subprocess.CompletedProcess, BatchConfig]:
        out = tmp_path / name / "kg.ttl"
        done = subprocess.run([sys.executable, "-m", "ptoie.cli.batch", str(corpus), "--out", str(out),
                               *flags], cwd=REPO, capture_output=True, text=True, timeout=300,
                              env=os.environ | {"PYTHONPATH": str(REPO)} | crash_env)
        return done, replace(clean, out=out)

    done, twice = run("thrice", {FaultInjection.CRASH_ON: "escreveu", FaultInjection.CRASH_ONCE: str(once)})
    assert done.returncode == 0, done.stderr
    assert len(list(once.iterdir())) == 3  # "escreveu": three sentences, each killed a worker once
    retried = json.loads((twice.parquet_path / ShardStore.LAST_RUN).read_text())["batch_retries"]
    assert retried >= 3 and f"{retried} batch(es) retried after a worker died" in done.stdout
    assert manifest(twice) == manifest(clean) and triple_rows(twice) == triple_rows(clean)

    done, poisoned = run("poison", {FaultInjection.CRASH_ON: "Lusíadas"})
    assert done.returncode == EXIT_SKIPPED, done.stderr
    [record] = [json.loads(line) for line in poisoned.errors_path.read_text().splitlines()]
    assert (record["doc_id"], record["kind"], record["tries"]) == ("camoes", "worker_crashed", MAX_TRIES)
    assert sorted(manifest(poisoned)) == ["cabral", "geo.txt", "machado", "pessoa"]
    assert {r[0] for r in triple_rows(poisoned)} == {r[0] for r in triple_rows(clean)} - {"camoes"}
