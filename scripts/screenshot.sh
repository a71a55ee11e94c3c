#!/usr/bin/env bash
# Screenshot of the graph picture (ptoie view) with headless Chromium: docs/img/kg.png in the README.
# Optional, for maintainers; nothing else needs Chromium (Debian: apt-get install chromium).
#
#   scripts/screenshot.sh [KG] [PNG] [ENTITY]
#
#   KG      the knowledge graph: the --out path of ptoie-batch (default out/kg.ttl: `make demo`)
#   PNG     the picture to write (default docs/img/kg.png)
#   ENTITY  the entity shown selected, with its triples in the side panel: its key, the last
#           segment of its IRI (default: none selected)
#
# Environment: CHROMIUM (the browser; default the first of chromium, chromium-browser,
# google-chrome on PATH), MAX_NODES (entities drawn, default 40), SIZE (window, default 1200,800),
# WAIT_MS (virtual time for vis-network's layout to settle, default 5000).
set -euo pipefail
cd "$(dirname "$0")/.."

kg=${1:-out/kg.ttl}
png=${2:-docs/img/kg.png}
entity=${3:-}
browser=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [ -z "$browser" ]; then
    echo "screenshot.sh: no Chromium found: apt-get install chromium, or set CHROMIUM=/path/to/it" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/ptoie view "$kg" --out "$work/kg.html" --max-nodes "${MAX_NODES:-40}"
mkdir -p "$(dirname "$png")"
# --virtual-time-budget lets the page's timers (the physics simulation) run before the shot;
# the other flags keep Chromium from reaching the network or keeping state.
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --disable-background-networking --disable-component-update --disable-sync --no-first-run \
    --user-data-dir="$work/profile" --window-size="${SIZE:-1200,800}" \
    --virtual-time-budget="${WAIT_MS:-5000}" --screenshot="$(realpath "$png")" \
    "file://$work/kg.html${entity:+#$entity}" 2> "$work/chromium.log" || {
    cat "$work/chromium.log" >&2
    exit 1
}
echo "$png"
