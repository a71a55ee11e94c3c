"""The batch job on a real 2-node Ray cluster on localhost (``ray start`` head + second node,
1 CPU each, token authentication): ``--address`` with ``--workers auto`` puts one extractor actor
on each node, and the triples equal those of a local run.

The cluster is ``bench/cluster.py``'s :class:`LocalRayCluster` (its docstring says how the token,
the temporary folders and the clean-up are isolated from the user's Ray and other jobs). A cluster
that cannot start fails the test; it is never skipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.cluster import LocalRayCluster  # noqa: E402
from test_batch import _real_corpus  # noqa: E402  (5 documents, 9 sentences)

FLAGS = ["--greedy", "--max-tokens", "24", "--n-parallel", "4", "--batch-sentences", "2",
         "--progress", "never"]


@pytest.fixture
def ray_cluster(request):
    cluster = LocalRayCluster(nodes=2, cpus_per_node=1, object_store_mb=100)
    request.addfinalizer(cluster.stop)  # also after a failed or partial start
    return cluster.start()


def _run(corpus: Path, out: Path, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "jobs.batch", str(corpus), "--out", str(out / "kg.ttl"),
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
def test_job_on_a_two_node_cluster_uses_both_nodes_and_matches_a_local_run(tmp_path, ray_cluster):
    corpus = _real_corpus(tmp_path)
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
    _run(corpus, tmp_path / "local", ray_cluster.env, "--workers", "2")
    cluster_rows = _rows(tmp_path / "cluster")
    assert len(cluster_rows) > 0, "the shipped model extracts triples from these sentences"
    assert cluster_rows == _rows(tmp_path / "local")
    assert _raw_outputs(tmp_path / "cluster") == _raw_outputs(tmp_path / "local")  # raw outputs too
    assert len(_raw_outputs(tmp_path / "cluster")) == 5
