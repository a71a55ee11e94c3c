"""Suite-wide setup: merged models (ptoie.merge) are cached in a temporary folder, not in the
user's ~/.cache; set in os.environ so that the jobs the tests start as subprocesses use it too."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def merged_model_cache(tmp_path_factory):
    before = os.environ.get("PTOIE_CACHE_DIR")
    os.environ["PTOIE_CACHE_DIR"] = str(tmp_path_factory.mktemp("ptoie-cache"))
    yield os.environ["PTOIE_CACHE_DIR"]
    if before is None:
        os.environ.pop("PTOIE_CACHE_DIR", None)
    else:
        os.environ["PTOIE_CACHE_DIR"] = before
