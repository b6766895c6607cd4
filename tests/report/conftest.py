"""Shared fixtures of the report / sweep / demo tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Token caches go to a per-session temp dir, never ~/.cache."""
    monkeypatch.setenv("EXCISE_CACHE", str(tmp_path_factory.getbasetemp() / "excise-cache"))
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
