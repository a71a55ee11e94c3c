"""The batch job on a real 2-node Ray cluster on this machine: what the driver costs (a script,
not a test). ``LocalRayCluster`` is also the fixture of ``tests/test_cluster.py``.

    .venv/bin/python bench/cluster.py [--sentences 600] [--job-flag=--max-tokens --job-flag=48 ...]

Starts a head node and a second node with ``ray start`` (1 CPU each, see :class:`LocalRayCluster`),
then runs ``ptoie-batch --workers auto`` on ``--sentences`` sentences (PUD-100's, then
TransAlign's, as ``bench/throughput.py`` picks them; 20 per .txt document, a blank line between)
twice: against the cluster (``--address``, 2 nodes x 1 CPU -> 2 workers) and on a local Ray
(``--workers auto`` -> one worker per CPU of this machine). Printed per run: sentences/s, the
driver's time storing batches (``commit_seconds`` of ``_last_run.json``: Parquet shard + manifest
append, fsync'ed) per 1,000 sentences and as a share of the run's wall time, and the driver's
time after the last batch (graph outputs, Ray shutdown: process end minus the last manifest
write).

Measured on the 2-core development machine, shared with other jobs (load average 3 to 12
during the runs, so the sentences/s of the two runs are not comparable with each other), Ray 2.60:

    .venv/bin/python bench/cluster.py --sentences 600       # job flags: --greedy --max-tokens 48

    cluster (2 nodes x 1 CPU, 2 workers): 603 sentences in 116.1 s, 5.19 sentences/s; storing
      batches 0.472 s = 0.78 s per 1,000 sentences = 0.41 % of the wall time; after the last
      batch 1.5 s
    local Ray (2 workers):                603 sentences in 152.3 s, 3.96 sentences/s; storing
      batches 0.316 s = 0.52 s per 1,000 sentences = 0.21 % of the wall time; after the last
      batch 2.9 s

With a shard per 2 sentences (the worst case: ``--per-document 2 --no-local --job-flag=--greedy
--job-flag=--max-tokens --job-flag=48 --job-flag=--batch-sentences --job-flag=2``, 400
sentences): 10.2 s per 1,000 sentences (about 20 ms per batch: a Parquet shard written and
fsync'ed, the manifest appended and fsync'ed), 4.3 % of the wall time. The driver commits while
the workers decode (two batches in flight per worker), so it is not the bottleneck here.

The cluster: ``ray start --block`` processes in their own sessions, with token authentication
(Ray 2.60 admits a second node only with it). The token is made by
``ray get-auth-token --generate`` with ``HOME`` pointed at the cluster's temporary folder, so
nothing is written to the user's ``~/.ray``; every process of the cluster, and every driver run
with :attr:`LocalRayCluster.env`, finds it through ``RAY_AUTH_TOKEN_PATH`` with
``RAY_AUTH_MODE=token``. ``RAY_TMPDIR`` points into the same folder, so a local ``ray.init()``
run with that environment neither finds nor disturbs another Ray of this machine (``ray.init()``
with no address joins the cluster named in ``$RAY_TMPDIR/ray/ray_current_cluster``,
``/tmp/ray/...`` by default), and ``--temp-dir`` gives each node its own session folder.
``stop()`` never runs ``ray stop`` (it kills every Ray on the machine, other users' included): it
ends the nodes' ``ray start`` processes, then kills whatever still carries the cluster's marker
variable in its environment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MARKER = "PTOIE_RAY_CLUSTER"
"""Environment variable set to the cluster's folder in every process of the cluster (and in
drivers run with :attr:`LocalRayCluster.env`): how ``stop()`` finds leftovers, and only ours."""

_PROBE = r"""
import json, sys, time
import ray
address, want, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ray.init(address=address, logging_level="ERROR", log_to_driver=False)
deadline = time.monotonic() + timeout
while True:
    nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    if len(nodes) >= want or time.monotonic() > deadline:
        break
    time.sleep(0.2)
actors = [{"class": a["ActorClassName"], "node": a["Address"]["NodeID"], "state": a["State"],
           "job": a["JobID"]} for a in ray._private.state.actors().values()]
print(json.dumps({"nodes": sorted(nodes), "actors": actors}))
"""


def _ray_command() -> str:
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.exists() else shutil.which("ray")
    if found is None:
        raise RuntimeError("the `ray` command is not installed next to this Python nor on PATH")
    return found


def _free_ports(n: int) -> list[int]:
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """A node's ``ray start`` gets SIGTERM (and shuts its node down) if our process dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort, Linux only
        pass


class LocalRayCluster:
    """A real Ray cluster of ``nodes`` nodes (``cpus_per_node`` CPUs each) on this machine.

    ``start()`` raises ``RuntimeError`` with the node's log when a node does not come up;
    ``stop()`` is safe to call at any point (also after a failed or partial start) and twice.
    """

    def __init__(self, *, nodes: int = 2, cpus_per_node: int = 1, object_store_mb: int = 100,
                 start_timeout: float = 90.0) -> None:
        self.n_nodes = nodes
        self.cpus_per_node = cpus_per_node
        self.object_store_mb = object_store_mb
        self.start_timeout = start_timeout
        self.root: Path | None = None
        self.address = ""
        self.env: dict[str, str] = {}
        """Environment for drivers of this cluster (token auth, isolated temp folder, marker)."""
        self.node_ids: list[str] = []
        self._nodes: list[tuple[subprocess.Popen, Path]] = []

    # -- start ---------------------------------------------------------------------------------
    def start(self) -> LocalRayCluster:
        # short: Ray's Unix sockets live at <temp-dir>/session_<date>_<pid>/sockets/...
        base = "/tmp" if os.access("/tmp", os.W_OK) else None
        self.root = Path(tempfile.mkdtemp(prefix="ptoie-ray-", dir=base))
        token = self._make_token()
        env = {k: v for k, v in os.environ.items()
               if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
        self.env = env | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
                          "RAY_TMPDIR": str(self.root), "RAY_USAGE_STATS_ENABLED": "0",
                          MARKER: str(self.root)}
        gcs_port, *ports = _free_ports(1 + 2 * self.n_nodes)
        self.address = f"127.0.0.1:{gcs_port}"
        common = ["--block", "--num-cpus", str(self.cpus_per_node),
                  "--object-store-memory", str(self.object_store_mb * 2**20),
                  "--disable-usage-stats"]
        for i in range(self.n_nodes):
            dashboard_port, agent_port = ports[2 * i], ports[2 * i + 1]
            role = (["--head", "--port", str(gcs_port), "--include-dashboard=false",
                     "--dashboard-port", str(dashboard_port)] if i == 0
                    else ["--address", self.address])
            self._start_node(f"node{i}", [*role, *common, "--temp-dir", str(self.root / f"n{i}"),
                                          "--dashboard-agent-listen-port", str(agent_port)])
        self.node_ids = self.query()["nodes"]
        if len(self.node_ids) != self.n_nodes:
            raise RuntimeError(f"the Ray cluster at {self.address} has {len(self.node_ids)} "
                               f"live node(s), expected {self.n_nodes}\n{self.logs()}")
        return self

    def _make_token(self) -> Path:
        """``ray get-auth-token --generate`` writes ``$HOME/.ray/auth_token``: HOME is ours."""
        assert self.root is not None
        home = self.root / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
        env["HOME"] = str(home)
        done = subprocess.run([_ray_command(), "get-auth-token", "--generate"], env=env,
                              capture_output=True, text=True, timeout=60)
        token = home / ".ray" / "auth_token"
        if done.returncode or not token.is_file():
            raise RuntimeError(f"`ray get-auth-token --generate` failed ({done.returncode}): "
                               f"{done.stderr.strip()}")
        token.chmod(0o600)
        return token

    def _start_node(self, name: str, args: list[str]) -> None:
        assert self.root is not None
        log = self.root / f"{name}.log"
        with open(log, "wb") as fh:
            process = subprocess.Popen(
                [_ray_command(), "start", *args], env=self.env, cwd=REPO, stdin=subprocess.DEVNULL,
                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent)
        self._nodes.append((process, log))
        deadline = time.monotonic() + self.start_timeout
        while b"Ray runtime started" not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                why = (f"exited with {process.returncode}" if process.poll() is not None
                       else f"not up after {self.start_timeout:g} s")
                raise RuntimeError(f"`ray start` of {name} {why}: "
                                   f"{' '.join(args)}\n{self.logs()}")
            time.sleep(0.2)

    # -- use -----------------------------------------------------------------------------------
    def query(self, timeout: float = 60.0) -> dict[str, Any]:
        """Live node ids (waiting up to ``timeout`` for all nodes) and every actor the cluster's
        GCS knows, dead ones included: ``{"nodes": [...], "actors": [{"class", "node",
        "state", "job"}, ...]}``. Runs as a separate driver process."""
        done = subprocess.run([sys.executable, "-c", _PROBE, self.address, str(self.n_nodes),
                               str(timeout)], env=self.env, cwd=REPO, capture_output=True,
                              text=True, timeout=timeout + 60)
        if done.returncode:
            raise RuntimeError(f"querying the Ray cluster at {self.address} failed: "
                               f"{done.stderr.strip()[-2000:]}\n{self.logs()}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(f"--- {log.name} ---\n{log.read_text(errors='replace')[-tail:]}"
                         for _, log in self._nodes if log.exists())

    def kill_node(self, index: int) -> None:
        """Lose node ``index`` as a crashed machine would: SIGKILL to its ``ray start`` session
        (raylet, object store, agents); its worker processes end when their raylet is gone."""
        process, _ = self._nodes[index]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()

    # -- stop ----------------------------------------------------------------------------------
    def stop(self) -> list[int]:
        """Stop the nodes (worker nodes first), kill leftovers carrying our marker, remove the
        folder. Returns the pids of the leftovers that had to be killed."""
        for process, _ in reversed(self._nodes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # `ray start --block` drains, stops its node
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # its session: GCS, raylet, agents
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
        killed = self.leftovers(kill=True)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        self.root, self._nodes = None, []
        return killed

    def leftovers(self, *, kill: bool = False) -> list[int]:
        """Pids of live processes whose environment carries this cluster's marker (Ray worker
        processes start their own sessions, so the process groups do not catch them)."""
        import psutil

        if self.root is None:
            return []
        found = []
        for proc in psutil.process_iter():
            if proc.pid == os.getpid():
                continue
            try:
                if proc.environ().get(MARKER) == str(self.root):
                    found.append(proc)
            except (psutil.Error, OSError):
                continue
        if kill:
            for proc in found:
                try:
                    proc.kill()
                except psutil.Error:
                    pass
            psutil.wait_procs(found, timeout=10)
        return [p.pid for p in found]

    def __enter__(self) -> LocalRayCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the measurement --------------------------------------------------------------------------
def write_corpus(folder: Path, sentences: list[str], per_document: int = 20) -> None:
    folder.mkdir(parents=True)
    for i in range(0, len(sentences), per_document):
        (folder / f"doc-{i // per_document:05d}.txt").write_text(
            "\n\n".join(sentences[i:i + per_document]) + "\n", encoding="utf-8")


def run_job(corpus: Path, out: Path, flags: list[str], env: dict[str, str],
            address: str | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "ptoie.cli.batch", str(corpus), "--out", str(out / "kg.ttl"),
               "--workers", "auto", "--progress", "never", *flags]
    if address:
        command += ["--address", address]
    began = time.time()
    done = subprocess.run(command, cwd=REPO, env=env | {"PYTHONPATH": str(REPO)},
                          capture_output=True, text=True)
    ended = time.time()
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    parquet = out / "kg.parquet"
    last_run = json.loads((parquet / "_last_run.json").read_text(encoding="utf-8"))
    manifest_written = (parquet / "_manifest.jsonl").stat().st_mtime
    return {"command": " ".join(command[1:]).replace(str(REPO) + "/", ""),
            "announce": [line for line in done.stderr.splitlines() if "--workers auto" in line],
            "process_s": ended - began, "after_last_batch_s": ended - manifest_written,
            **last_run}


def report(name: str, run: dict[str, Any]) -> None:
    n, wall, commit = run["sentences"], run["seconds"], run["commit_seconds"]
    print(f"{name}: {run['workers']} workers on {run['worker_nodes']} node(s); {n} sentences, "
          f"{run['triples']} triples")
    print(f"  command  python {run['command']}")
    for line in run["announce"]:
        print(f"  {line}")
    print(f"  wall     {wall:.1f} s (job), {run['process_s']:.1f} s (process); "
          f"{n / wall:.2f} sentences/s")
    print(f"  driver   storing batches {commit:.3f} s = {1000 * commit / n:.3f} s per 1,000 "
          f"sentences = {100 * commit / wall:.2f} % of the wall time")
    after = run["after_last_batch_s"]
    print(f"  driver   after the last batch (graph outputs, Ray shutdown) {after:.1f} s = "
          f"{100 * after / run['process_s']:.1f} % of the process time")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=600)
    parser.add_argument("--per-document", type=int, default=20)
    parser.add_argument("--job-flag", action="append", dest="job_flags", metavar="FLAG",
                        help="flags for ptoie-batch, one per option, e.g. --job-flag=--max-tokens "
                             "--job-flag=48 (default: --greedy --max-tokens 48)")
    parser.add_argument("--no-local", action="store_true", help="skip the local-Ray run")
    args = parser.parse_args(argv)
    flags = args.job_flags or ["--greedy", "--max-tokens", "48"]

    sys.path.insert(0, str(REPO))
    from bench.throughput import load_corpus  # PUD-100 sentences first, then TransAlign

    sentences = load_corpus(args.sentences)[0]
    with tempfile.TemporaryDirectory(prefix="ptoie-cluster-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        write_corpus(corpus, sentences, args.per_document)
        print(f"{len(sentences)} sentences in {len(list(corpus.iterdir()))} documents; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
        with LocalRayCluster(nodes=2, cpus_per_node=1) as cluster:
            env = cluster.env
            print(f"cluster: {len(cluster.node_ids)} nodes at {cluster.address}", flush=True)
            on_cluster = run_job(corpus, Path(tmp) / "cluster", flags, env, cluster.address)
            actors = [a for a in cluster.query()["actors"] if a["class"] == "ExtractorWorker"]
            report("2-node cluster", on_cluster)
            print(f"  actors   {len(actors)} ExtractorWorker on {len({a['node'] for a in actors})} "
                  f"node(s) (GCS actor table)", flush=True)
            if not args.no_local:
                local = run_job(corpus, Path(tmp) / "local", flags, env, None)
                report("local Ray", local)
                print(f"  load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
