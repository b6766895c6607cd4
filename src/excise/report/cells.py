"""Table cells: how numbers look in every report and document table."""

from __future__ import annotations

import math
from typing import Any

from excise.report.analysis import MeanSpread


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` decimals, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}f}"
    return str(value)


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def pm(ms: MeanSpread) -> str:
    mean, spread = ms
    return "–" if mean is None else f"{mean:.3f} ± {spread:.3f}"


def signed(value: float | None, unit: str, digits: int) -> str:
    return "–" if value is None else f"{value:+.{digits}f}{unit}"


def signed_pm(ms: MeanSpread, unit: str, digits: int) -> str:
    mean, spread = ms
    return "–" if mean is None else f"{mean:+.{digits}f}{unit} ± {spread:.{digits}f}"


def not_recovered(steps_to_recover: int | None, steps: Any) -> Any:
    return steps_to_recover if steps_to_recover is not None else f"> {steps}"
