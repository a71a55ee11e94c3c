"""Suite-wide setup: ptoie's cache (the assembled embedded base, merged models, de-quantised
training bases) lives in the checkout's .pytest_cache/ptoie-cache, not in the user's ~/.cache, and
is kept between runs (its entries are keyed by the content they were made from); set in os.environ
so that the jobs the tests start as subprocesses use it too. Tests of the cache itself use their
own folders."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def ptoie_cache(request):
    before = os.environ.get("PTOIE_CACHE_DIR")
    cache = request.config.cache.mkdir("ptoie-cache")
    os.environ["PTOIE_CACHE_DIR"] = str(cache)
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
