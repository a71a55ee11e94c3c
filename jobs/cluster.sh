#!/usr/bin/env bash
# A batch job on an existing Ray cluster: a corpus -> a knowledge graph, with one worker per
# --threads-per-worker CPUs of the whole cluster (--workers auto).
#
#   RAY_ADDRESS=HEAD:6379 jobs/cluster.sh CORPUS OUT [ptoie-batch flags...]
#   e.g. RAY_ADDRESS=10.0.0.1:6379 jobs/cluster.sh /data/corpus /data/kg/kg.ttl --min-confidence 0.5
#
# What the cluster needs (docs/batch.md, "Ray"):
# * ptoie installed on every node, and --model / --lora paths (when given) present on every node;
# * token authentication, which Ray admits a second node only with: create the token once with
#   `ray get-auth-token --generate` (it writes ~/.ray/auth_token; copy it to every node, or point
#   RAY_AUTH_TOKEN_PATH at it), and start the head and every other node with RAY_AUTH_MODE=token
#   in their environment. This script sets RAY_AUTH_MODE=token for the driver;
# * PTOIE_CACHE_DIR on a disk the nodes share (optional): the adapter merged into the base is then
#   built once for all workers instead of once per node.
#
# CORPUS and OUT are read relative to the current directory. OUT is on the driver's disk: the
# driver alone writes the shards, the manifest and the graph. Rerunning the same command resumes.
# Exit status: 0 done, 3 done with skipped documents, 2 usage error (nothing written), 4 stopped
# (rerun to resume).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if [[ $# -lt 2 || -z "${RAY_ADDRESS:-}" ]]; then
    echo "usage: RAY_ADDRESS=HEAD:PORT jobs/cluster.sh CORPUS OUT [ptoie-batch flags...]" >&2
    exit 2
fi
corpus=$1
out=$2
shift 2

export RAY_AUTH_MODE=${RAY_AUTH_MODE:-token}
"$root/.venv/bin/ptoie-batch" "$corpus" --out "$out" --address "$RAY_ADDRESS" --workers auto "$@"
