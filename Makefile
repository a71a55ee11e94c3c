# The README's two commands. Both set up .venv first (scripts/setup.sh; idempotent).
.PHONY: setup demo test

setup:
	bash scripts/setup.sh

# (a) the main job on the embedded default model: sample corpus -> out/kg.ttl + Parquet + GraphML
demo: setup
	.venv/bin/ptoie-batch examples/corpus --out out/kg.ttl

# (b) the import contracts (pyproject.toml, import-linter), then the test suite
test: setup
	.venv/bin/lint-imports
	.venv/bin/python -m pytest -q tests
