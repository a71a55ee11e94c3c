"""Suite-wide setup: merged models (ptoie.extract.lora_merge) are cached in a temporary folder, not in the
user's ~/.cache; set in os.environ so that the jobs the tests start as subprocesses use it too."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def merged_model_cache(tmp_path_factory):
    before = os.environ.get("PTOIE_CACHE_DIR")
    os.environ["PTOIE_CACHE_DIR"] = str(tmp_path_factory.mktemp("ptoie-cache"))
    yield os.environ["PTOIE_CACHE_DIR"]
    if before is None:
        os.environ.pop("PTOIE_CACHE_DIR", None)
    else:
        os.environ["PTOIE_CACHE_DIR"] = before


@pytest.fixture()
def restore_torch_threads():
    """train() applies ``threads`` process-wide; put the previous value back for later tests."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
