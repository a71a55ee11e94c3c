"""The batch job on a real 2-node Ray cluster on localhost (``ray start`` head + second node,
1 CPU each, token authentication): ``--address`` with ``--workers auto`` puts one extractor actor
on each node, and the triples equal those of a local run; a node lost in the middle of a job
leaves the job finishing on the other, with the same triples.

The cluster is ``bench/cluster.py``'s :class:`LocalRayCluster` (its docstring says how the token,
the temporary folders and the clean-up are isolated from the user's Ray and other jobs). A cluster
that cannot start fails the test; it is never skipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.cluster import LocalRayCluster  # noqa: E402
from test_batch import _real_corpus  # noqa: E402  (5 documents, 9 sentences)

FLAGS = ["--model", "embedded:smollm2", "--lora", str(REPO / "models" / "ptoie-smollm2-135m-lora-f16.gguf"),
         "--greedy", "--max-tokens", "24", "--n-parallel", "4", "--batch-sentences", "2",
         "--progress", "never"]
"""The job mechanics run on the smaller SmolLM2 adapter (the default model has its own tests)."""


@pytest.fixture(scope="module")
def ray_cluster(request):
    """One cluster for the module: the node-loss test, which kills the second node, runs last."""
    cluster = LocalRayCluster(nodes=2, cpus_per_node=1, object_store_mb=100)
    request.addfinalizer(cluster.stop)  # also after a failed or partial start
    return cluster.start()


@pytest.fixture(scope="module")
def local_run(ray_cluster, tmp_path_factory) -> tuple[Path, Path]:
    """The corpus and the output folder of the same job on a local Ray (2 workers)."""
    root = tmp_path_factory.mktemp("local-run")
    corpus = _real_corpus(root)
    _run(corpus, root / "local", ray_cluster.env, "--workers", "2")
    return corpus, root / "local"


def _run(corpus: Path, out: Path, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ptoie.cli.batch", str(corpus), "--out", str(out / "kg.ttl"),
               *FLAGS, *flags]
    done = subprocess.run(command, cwd=REPO, env=env | {"PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"
    return done


def _rows(out: Path) -> list[tuple]:
    table = ds.dataset(out / "kg.parquet", format="parquet").to_table()
    return sorted((r["doc_id"], r["sentence_id"], r["extraction_index"], r["arg1"], r["rel"],
                   r["arg2"]) for r in table.to_pylist())


def _raw_outputs(out: Path) -> dict[str, str]:
    lines = (out / "kg.parquet" / "_manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return {e["doc_id"]: e["outputs_sha256"] for e in map(json.loads, lines)}


@pytest.mark.slow
def test_job_on_a_two_node_cluster_uses_both_nodes_and_matches_a_local_run(tmp_path, ray_cluster,
                                                                          local_run):
    corpus, local = local_run
    assert len(ray_cluster.node_ids) == 2

    on_cluster = _run(corpus, tmp_path / "cluster", ray_cluster.env,
                      "--address", ray_cluster.address, "--workers", "auto")
    assert ("2 worker(s) x 1 thread(s) (--workers auto: 2 CPUs / 1 thread(s) per worker)"
            in on_cluster.stderr), on_cluster.stderr
    assert "workers    2 on 2 Ray node(s); driver stored batches in" in on_cluster.stdout
    last_run = json.loads((tmp_path / "cluster" / "kg.parquet" / "_last_run.json").read_text())
    assert (last_run["workers"], last_run["worker_nodes"], last_run["exit_code"]) == (2, 2, 0)
    assert 0 < last_run["commit_seconds"] < last_run["seconds"]

    # independently of the job: the cluster's GCS actor table (the job's actors are dead by now)
    actors = [a for a in ray_cluster.query()["actors"] if a["class"] == "ExtractorWorker"]
    assert len(actors) == 2, actors
    assert sorted(a["node"] for a in actors) == sorted(ray_cluster.node_ids)  # one per node

    # the same job on a local Ray (2 workers): the same decodes, so the same triples
    cluster_rows = _rows(tmp_path / "cluster")
    assert len(cluster_rows) > 0, "the shipped model extracts triples from these sentences"
    assert cluster_rows == _rows(local)
    assert _raw_outputs(tmp_path / "cluster") == _raw_outputs(local)  # raw outputs too
    assert len(_raw_outputs(tmp_path / "cluster")) == 5


@pytest.mark.slow
def test_a_node_lost_mid_job_leaves_the_job_finishing_on_the_other(tmp_path, ray_cluster, local_run):
    """The second node is killed (SIGKILL to its raylet's session) once the first batch is
    stored: the batch its worker held, if any, goes to the worker on the head node, Ray cannot
    restart that worker anywhere (1 CPU per node), no batch is sent to it again, and the job ends
    with every document, as a local run. (Whether the lost worker held a batch at that moment
    depends on timing: ``batch_retries`` is 1 when it did, 0 when it had just finished one.)"""
    corpus, local = local_run
    out = tmp_path / "cluster"
    manifest = out / "kg.parquet" / "_manifest.jsonl"
    command = [sys.executable, "-m", "ptoie.cli.batch", str(corpus), "--out", str(out / "kg.ttl"),
               *FLAGS, "--address", ray_cluster.address, "--workers", "auto"]
    job = subprocess.Popen(command, cwd=REPO, env=ray_cluster.env | {"PYTHONPATH": str(REPO)},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while job.poll() is None and time.monotonic() < deadline:
            if manifest.exists() and manifest.read_text().count("\n") >= 1:
                break
            time.sleep(0.05)
        assert job.poll() is None, "the job ended before the node could be lost"
        ray_cluster.kill_node(1)
        stdout, stderr = job.communicate(timeout=300)
    finally:
        job.kill()
    assert job.returncode == 0, f"{stdout}\n{stderr}"
    last_run = json.loads((out / "kg.parquet" / "_last_run.json").read_text())
    assert (last_run["worker_nodes"], last_run["documents_skipped"]) == (2, 0)
    assert last_run["batch_retries"] in (0, 1)
    assert _rows(out) == _rows(local) and _raw_outputs(out) == _raw_outputs(local)
