"""``excise sweep``: a grid of runs, trained, unlearned, evaluated and attacked in stages.

- :mod:`~excise.sweep.spec` — the sweep file, validated like a run config;
- :mod:`~excise.sweep.plan` — grid expansion, run names, per-point configs, references;
- :mod:`~excise.sweep.execute` — the stages, one run at a time or in a process pool;
- :mod:`~excise.sweep.results` — ``sweep.json`` and ``results.jsonl``.

Nothing here imports torch until a stage runs.
"""

from excise.sweep.execute import cli_sweep, run_sweep
from excise.sweep.plan import PlannedRun, expand_points, plan, point_config, point_name
from excise.sweep.results import RESULTS_FILE, SWEEP_FILE, read_results
from excise.sweep.spec import SweepSpec, configs_dir, flatten_keys, load_spec, parse_spec

__all__ = [
    "RESULTS_FILE", "SWEEP_FILE", "PlannedRun", "SweepSpec", "cli_sweep", "configs_dir",
    "expand_points", "flatten_keys", "load_spec", "parse_spec", "plan", "point_config",
    "point_name", "read_results", "run_sweep",
]  # fmt: skip
