"""Fixtures for the eval tests (helpers live in eval_test_helpers)."""

from types import SimpleNamespace

import pytest
import torch
from eval_test_helpers import synthetic_data


@pytest.fixture
def data() -> SimpleNamespace:
    return synthetic_data()


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)
