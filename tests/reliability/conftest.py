"""Reliability tests: one token cache for the session (in a temporary directory)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    saved = os.environ.get("EXCISE_CACHE")
    os.environ["EXCISE_CACHE"] = str(tmp_path_factory.getbasetemp() / "cache")
    yield
    if saved is None:
        os.environ.pop("EXCISE_CACHE", None)
    else:
        os.environ["EXCISE_CACHE"] = saved
