"""Shared fixtures for the data tests: an isolated token cache and tiny configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from excise.config import Config, config_from_dict


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("EXCISE_CACHE", str(cache))
    return cache


def _tiny_config(**overrides) -> Config:
    """A small bilingual config: few documents, small vocabulary and context."""
    data = {
        "seed": 0,
        "model": {"vocab_size": 512, "context": 32, "n_layers": 1, "d_model": 16, "n_heads": 2, "d_ff": 32},
        "partition": {"forget_mlp_units": 4, "forget_heads": 1},
        "data": {"builtin": "bilingual", "builtin_documents": 60, "test_fraction": 0.1},
        "train": {"batch_size": 4},
    }
    for dotted, value in overrides.items():
        node = data
        parts = dotted.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return config_from_dict(data)


@pytest.fixture
def make_config():
    """Factory: ``make_config(data__builtin_documents=100, labels__recall=0.9)``."""
    return _tiny_config


@pytest.fixture
def shared_data() -> Path:
    """The shared sample corpora, or skip when they are not on this machine."""
    path = _shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared sample data not found at {path} (set EXCISE_SHARED_DATA)")
    return path


def _shared_data_dir() -> Path:
    env = os.environ.get("EXCISE_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
