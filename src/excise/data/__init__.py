"""Data: built-in corpora, loaders, tokenizer, packed token cache, label schedule, labeller.

The training engine needs two things from here: :func:`prepare_data` (token arrays by
domain and split, plus the tokenizer) and :class:`StepSchedule` (per optimizer step: true
domain, batch rows and applied label, a pure function of seed and step).
"""

from excise.data.builtin import FactProbe
from excise.data.prepare import PreparedData, describe, prepare_data
from excise.data.schedule import StepLabel, StepSchedule

__all__ = ["FactProbe", "PreparedData", "StepLabel", "StepSchedule", "describe", "prepare_data"]
