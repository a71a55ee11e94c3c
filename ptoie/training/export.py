"""Trained runs -> GGUF files that llama.cpp (and so the extractor) loads.

Two products, both written with the ``gguf`` package following the conventions of llama.cpp's
``convert_hf_to_gguf.py`` / ``convert_lora_to_gguf.py`` for the architectures ptoie targets
(:mod:`ptoie.training.gguf_layout`: Llama/SmolLM2, Qwen2, Gemma 3):

* :func:`ptoie.training.export_model.write_model_gguf` -- a full model (an FFT run, or a peft
  LoRA merged into its base) as a GGUF ``F16`` or ``Q8_0`` file with the hyper-parameters and
  tokenizer llama.cpp needs;
* :func:`ptoie.training.export_adapter.write_lora_adapter_gguf` -- a peft LoRA adapter as a
  llama.cpp LoRA-adapter GGUF (``general.type=adapter``), applied at run time on top of the base
  GGUF through ``lora_path``.

:func:`export_run` is what ``ptoie-train export`` calls: it finds the base of a run, picks the
tokenizer source and writes the requested files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ptoie.training.base import base_gguf_path, load_base_config
from ptoie.training.export_adapter import AdapterDType, write_lora_adapter_gguf
from ptoie.training.export_model import MODEL_FILE_TYPES, ModelFileType, write_model_gguf
from ptoie.training.generate_hf import load_run
from ptoie.training.gguf_layout import ExportError

log = logging.getLogger("ptoie.export")

_GENERIC_RUN_FOLDERS = ("final", "adapter", "model")
"""Run folders named after their role: exported files take the name of the folder above them."""


def run_kind(run_dir: Path) -> Literal["adapter", "model"]:
    """``adapter`` for a peft LoRA folder, ``model`` for a full (FFT) model folder."""
    if (run_dir / "adapter_config.json").is_file():
        return "adapter"
    if (run_dir / "config.json").is_file():
        return "model"
    raise ExportError(f"{run_dir} is neither a peft adapter (adapter_config.json) nor a model folder "
                      "(config.json); pass the run's final/ folder")


def run_base_model(run_dir: Path, base_model: str | None) -> str | None:
    """The base a run was trained from: ``base_model`` if given, else the run's ``report.json``."""
    if base_model:
        return base_model
    report = run_dir.parent / "report.json"
    if not report.is_file():
        return None
    recorded = json.loads(report.read_text(encoding="utf-8"))["config"]["base_model"]
    if recorded.endswith(".gguf") and not Path(recorded).is_file():
        raise ExportError(f"{report} names base_model {recorded!r}, which is not on this machine "
                          "(trained elsewhere?): pass --base (e.g. embedded:smollm2)")
    return recorded


@dataclass(frozen=True, slots=True)
class ExportedFile:
    """One file written by :func:`export_run`."""

    kind: Literal["adapter", "model"]
    file_type: str
    path: Path

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (with the size in MB)."""
        return {"kind": self.kind, "file_type": self.file_type, "path": str(self.path),
                "size_mb": round(self.path.stat().st_size / 2**20, 2)}


def export_run(run_dir: Path | str, *, out_dir: Path | str,
               base_model: str | None = None,
               adapter: bool | None = None, adapter_dtype: AdapterDType = "f16",
               merged: Iterable[ModelFileType] | None = None,
               tokenizer_pre: str | None = None, name: str | None = None) -> list[ExportedFile]:
    """Export a training run's ``final/`` folder to GGUF files under ``out_dir``.

    Defaults: a LoRA run gives its adapter GGUF (what ships: a few MB on top of the base GGUF); an
    FFT run gives the merged model as F16 and Q8_0. ``merged`` asks for merged files explicitly (a
    LoRA run is merged into its base first). ``base_model`` defaults to the run's ``report.json``;
    the tokenizer is copied from the base GGUF when the base is one, else built from the run's
    tokenizer files."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    kind = run_kind(run_dir)
    base = run_base_model(run_dir, base_model)
    adapter, merged = _products(run_dir, kind, base, adapter, merged)
    name = name or (run_dir.parent.name if run_dir.name in _GENERIC_RUN_FOLDERS else run_dir.name)
    written: list[ExportedFile] = []
    if adapter:
        path = out_dir / f"{name}-lora-{adapter_dtype}.gguf"
        write_lora_adapter_gguf(run_dir, path, base_config=load_base_config(base), dtype=adapter_dtype,
                                name=name)
        written.append(ExportedFile("adapter", adapter_dtype, path))
        log.info("adapter -> %s", path)
    if merged:
        model = load_run(run_dir, base_model=base or str(run_dir), device="cpu")
        tokenizer_source = _tokenizer_source(run_dir, base)
        for file_type in merged:
            path = out_dir / f"{name}-{file_type}.gguf"
            write_model_gguf(model, path, file_type=file_type, tokenizer_source=tokenizer_source,
                             tokenizer_pre=tokenizer_pre, name=name)
            written.append(ExportedFile("model", file_type, path))
            log.info("merged %s -> %s", file_type, path)
    return written


def _products(run_dir: Path, kind: Literal["adapter", "model"], base: str | None,
              adapter: bool | None, merged: Iterable[ModelFileType] | None
              ) -> tuple[bool, tuple[ModelFileType, ...]]:
    """``(adapter?, merged file types)`` to write for a run, defaults filled in and checked."""
    if kind == "adapter" and base is None:
        raise ExportError(f"{run_dir} is a LoRA adapter and {run_dir.parent / 'report.json'} is missing: "
                          "pass the base it was trained on (--base embedded:smollm2 | HF id | folder | .gguf)")
    if adapter is None:
        adapter = kind == "adapter"
    merged = tuple(merged) if merged is not None else () if kind == "adapter" else MODEL_FILE_TYPES
    for file_type in merged:
        if file_type not in MODEL_FILE_TYPES:
            raise ExportError(f"merged file type {file_type!r} unknown; choose from {list(MODEL_FILE_TYPES)}")
    if adapter and kind != "adapter":
        raise ExportError(f"{run_dir} is a full fine-tune: there is no adapter to export (use merged)")
    if not adapter and not merged:
        raise ExportError("nothing to export: ask for the adapter and/or merged file types")
    return adapter, merged


def _tokenizer_source(run_dir: Path, base: str | None) -> str | Path:
    """Where the merged model's tokenizer comes from: the base GGUF when the base is one, else the
    run's tokenizer files, else the base."""
    base_gguf = base_gguf_path(base) if base else None
    if base_gguf is not None:
        return base_gguf
    if (run_dir / "tokenizer.json").is_file() or (run_dir / "tokenizer_config.json").is_file():
        return run_dir
    if base is not None:
        return base
    raise ExportError(f"{run_dir} has no tokenizer files and no base is known: pass --base")
