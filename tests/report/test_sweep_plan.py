"""Sweep files, grid expansion, run names, references and per-point configs (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from excise.errors import UserError
from excise.sweep.plan import (
    expand_grid,
    expand_points,
    find_reference,
    plan,
    point_config,
    point_name,
    unique_names,
)  # fmt: skip
from excise.sweep.spec import load_spec, parse_spec

REPO = Path(__file__).resolve().parents[2]
BASE = str(REPO / "configs" / "bilingual-tiny.yaml")


def test_expand_grid_is_the_cartesian_product_first_key_slowest():
    points = expand_grid({"method.name": ["sgtm", "weak_filter"], "seed": [0, 1, 2]})
    assert len(points) == 6
    assert points[0] == {"method.name": "sgtm", "seed": 0}
    assert points[2] == {"method.name": "sgtm", "seed": 2}
    assert points[3] == {"method.name": "weak_filter", "seed": 0}
    assert expand_grid({}) == [{}]


def test_include_entries_cross_with_shared_axes_and_duplicates_drop():
    spec = parse_spec({
        "base": BASE,
        "grid": {"method.name": ["sgtm"], "labels.recall": [1.0, 0.5], "seed": [0, 1]},
        "include": [{"method.name": ["no_filter", "strict_filter"]}, {"method.name": "sgtm", "labels.recall": 1.0, "seed": 0}],
    })  # fmt: skip
    points = expand_points(spec)
    assert len(points) == 4 + 4  # the second include entry duplicates a grid point
    refs = [p for p in points if p["method.name"] in ("no_filter", "strict_filter")]
    assert refs == [
        {"method.name": "no_filter", "seed": 0}, {"method.name": "no_filter", "seed": 1},
        {"method.name": "strict_filter", "seed": 0}, {"method.name": "strict_filter", "seed": 1},
    ]  # fmt: skip


def test_point_names_are_readable_and_unique():
    assert point_name({"method.name": "sgtm", "labels.recall": 0.9, "seed": 0}) == "sgtm-recall0.9-seed0"
    assert point_name({"method.masking": "updates", "train.lr": 0.002}) == "mask-updates-lr0.002"
    assert point_name({"data.forget.path": "/a b/es.jsonl"}) == "path_a_b_es.jsonl"
    assert point_name({}) == "run"
    assert unique_names([{"a": 1}, {"a": 1}, {"a": 2}]) == ["a1", "a1-2", "a2"]


def test_reference_is_the_no_filter_run_of_the_same_seed():
    refs = [
        ("nf-0", {"method.name": "no_filter", "seed": 0}),
        ("nf-1", {"method.name": "no_filter", "seed": 1}),
    ]
    assert find_reference({"method.name": "sgtm", "labels.recall": 0.9, "seed": 1}, refs) == "nf-1"
    assert find_reference({"method.name": "sgtm", "seed": 2}, refs) is None
    assert find_reference({"method.name": "sgtm"}, refs) == "nf-0"


def test_point_config_precedence_base_sweep_cli_grid():
    spec = parse_spec(
        {"base": BASE, "overrides": {"train.steps": 7, "train.lr": 0.01}, "grid": {"seed": [3]}}
    )
    config = point_config(spec, {"seed": 3, "train.lr": 0.5}, ["train.steps=9", "seed=1"])
    assert config.train.steps == 9  # CLI beats the sweep file
    assert config.seed == 3  # grid values beat the CLI
    assert config.train.lr == 0.5
    assert config.model.n_layers == 4  # from the base recipe
    parallel = point_config(spec, {"seed": 3}, jobs=2)
    assert parallel.train.threads >= 1 and parallel.logging.progress is False


def test_plan_adds_unlearned_runs_with_references():
    spec = parse_spec({
        "base": BASE, "grid": {"method.name": ["sgtm", "no_filter"], "seed": [0, 1]},
        "unlearn": "rmu", "after": ["relearn"],
    })  # fmt: skip
    assert spec.after == ["eval", "relearn"]  # the reference loss needs evaluations
    runs = {r.name: r for r in plan(spec)}
    assert set(runs) == {"sgtm-seed0", "sgtm-seed1", "no_filter-seed0", "no_filter-seed1",
                         "no_filter-seed0-rmu", "no_filter-seed1-rmu"}  # fmt: skip
    assert runs["no_filter-seed1-rmu"].kind == "unlearn"
    assert runs["no_filter-seed1-rmu"].source == "no_filter-seed1"
    assert runs["no_filter-seed1-rmu"].reference == "no_filter-seed1"
    assert runs["sgtm-seed0"].reference == "no_filter-seed0"
    assert runs["no_filter-seed0"].reference is None


@pytest.mark.parametrize("bad, message", [
    ({"grid": {"seed": [0]}}, "base"),
    ({"base": BASE, "gird": {}}, "unknown sweep key"),
    ({"base": BASE, "after": ["attack"]}, "after"),
    ({"base": BASE, "unlearn": "forget-it"}, "unlearn"),
    ({"base": BASE, "grid": {"seed": []}}, "no values"),
    ({"base": "no/such/recipe.yaml"}, "not found"),
    ({"base": BASE, "eval": {"overides": []}}, "eval.overides: unknown sweep key"),
    ({"base": BASE, "relearn": {"skip_methods": ["no-filter"]}}, "relearn.skip_methods: unknown method"),
    ({"base": BASE, "include": [{}]}, "include.0: must map dotted keys"),
])  # fmt: skip
def test_bad_sweep_files_are_user_errors(bad, message):
    with pytest.raises(UserError, match=message):
        parse_spec(bad)


def test_every_problem_of_a_sweep_file_is_reported_with_its_key_path():
    with pytest.raises(UserError) as err:
        parse_spec({"gird": {}, "grid": {"seed": [], "labels.recall": []}, "jobs": 0})
    lines = str(err.value).splitlines()
    assert lines[0] == "invalid sweep file (sweep):"
    for expected in ("base:", "grid.seed: has no values", "grid.labels.recall: has no values", "jobs:",
                     "gird: unknown sweep key"):  # fmt: skip
        assert any(line.strip().startswith(expected) for line in lines), expected


def test_invalid_points_fail_before_training():
    spec = parse_spec({"base": BASE, "grid": {"labels.recall": [0.5, 2.0]}})
    with pytest.raises(UserError, match="recall2"):
        plan(spec)


NOVELS_PATHS = [
    "data.retain.path=../shared/data/literature/en.jsonl",
    "data.forget.path=../shared/data/literature/es.jsonl",
]
TEXTBOOKS_PATHS = ["data.path=../shared/data/topics/openstax_textbooks.jsonl"]


# Ready-made sweeps and the study sweeps behind docs/results.md.
SWEEP_FILES = sorted(p.relative_to(REPO / "configs").as_posix()
                     for folder in ("sweeps", "experiments") for p in (REPO / "configs" / folder).glob("*.yaml"))  # fmt: skip


def test_both_sweep_folders_are_covered():
    assert any(f.startswith("sweeps/") for f in SWEEP_FILES) and any(
        f.startswith("experiments/") for f in SWEEP_FILES
    )


@pytest.mark.parametrize("path", SWEEP_FILES)
def test_shipped_sweeps_plan_valid_configs(path):
    spec = load_spec(REPO / "configs" / path)
    name = Path(path).name
    # the real-text sweeps take their data paths on the command line, as the README shows
    paths = (
        NOVELS_PATHS if name.startswith("novels") else TEXTBOOKS_PATHS if name.startswith("textbooks") else []
    )
    runs = plan(spec, paths)
    assert runs and all(r.config is not None or r.kind == "unlearn" for r in runs)
    assert len({r.name for r in runs}) == len(runs)


def test_novels_sweeps_name_the_missing_data_paths():
    spec = load_spec(REPO / "configs" / "experiments" / "novels-screen.yaml")
    with pytest.raises(UserError, match="path"):
        plan(spec)


def test_undiscovered_sweep_covers_the_papers_rates():
    spec = load_spec(REPO / "configs" / "sweeps" / "undiscovered.yaml")
    assert sorted(1 - r for r in spec.grid["labels.recall"]) == pytest.approx([0, 0.1, 0.3, 0.5, 1.0])
    methods = {r.method for r in plan(spec)}
    assert methods == {"sgtm", "gradient_routing", "weak_filter", "no_filter", "strict_filter"}


def test_recipes_are_found_in_the_checkout_the_package_and_by_env(tmp_path, monkeypatch):
    import excise
    from excise.sweep import configs_dir

    assert (configs_dir() / "demo.yaml").is_file()
    # the copy an installed wheel carries (package-data excise/configs/*.yaml)
    assert (Path(excise.__file__).resolve().parent / "configs" / "demo.yaml").is_file()
    (tmp_path / "demo.yaml").write_text("seed: 0\n")
    monkeypatch.setenv("EXCISE_CONFIGS", str(tmp_path))
    assert configs_dir() == tmp_path
