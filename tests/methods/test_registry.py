"""The method registry is the one list of methods: every other list must agree with it."""

from __future__ import annotations

from typing import get_args

import pytest

from excise.methods.registry import METHODS, UNLEARNING_METHODS, get_method


def test_unlearning_methods_are_the_ones_unlearn_and_the_config_know():
    from excise.config import UnlearnConfig
    from excise.methods.unlearn import UNLEARNERS

    assert tuple(UNLEARNERS) == UNLEARNING_METHODS
    assert get_args(UnlearnConfig.model_fields["method"].annotation) == UNLEARNING_METHODS


@pytest.mark.parametrize("name, partitioned, skipped", [
    ("sgtm", True, []),
    ("gradient_routing", True, []),
    ("activation_masking", True, []),
    ("no_filter", False, []),
    ("weak_filter", False, ["forget/forget", "adjacent/forget", "retain/forget"]),
    ("strict_filter", False, ["forget/forget", "forget/retain", "forget/default", "adjacent/forget",
                              "adjacent/retain", "adjacent/default", "retain/forget"]),
])  # fmt: skip
def test_what_each_method_trains_and_skips(name, partitioned, skipped):
    method = get_method(name)
    assert method.partitioned is partitioned and method.released == ("ablated" if partitioned else "full")
    steps = [
        f"{d}/{label}" for d in ("forget", "adjacent", "retain") for label in ("forget", "retain", "default")
    ]
    assert [s for s in steps if method.skips(*reversed(s.split("/")))] == skipped


def test_unknown_methods_name_the_known_ones():
    with pytest.raises(ValueError, match="weak_filter"):
        get_method("weak-filter")
    assert list(METHODS)[:1] == ["sgtm"]
