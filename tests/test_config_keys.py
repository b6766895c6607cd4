"""``excise config``: every key of the typed config is listed with its type and default, and
a recipe's resolved values are marked where they differ from the defaults."""

from __future__ import annotations

from pathlib import Path

from excise.cli import main
from excise.config import Config, config_to_yaml, load_config
from excise.config_keys import config_keys, format_keys

REPO = Path(__file__).resolve().parents[1]


def _leaves(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        out |= _leaves(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}"}
    return out


def test_every_key_of_a_resolved_config_is_listed():
    import yaml

    listed = {k.path for k in config_keys()}
    config = load_config(REPO / "configs" / "textbooks-tiny.yaml", ["data.path=x.jsonl"])
    assert _leaves(yaml.safe_load(config_to_yaml(config))) <= listed
    assert {"train.lr", "method.name", "data.forget.filter", "model.attention_pattern"} <= listed


def test_recipe_values_are_marked_where_they_differ(capsys):
    assert main(["config", str(REPO / "configs" / "demo.yaml"), "train.lr=0.003"]) == 0
    out = capsys.readouterr().out
    marked = {line.split()[0].lstrip("*") for line in out.splitlines() if line.startswith(" *")}
    assert {"train.lr", "train.steps", "model.vocab_size"} <= marked
    assert "seed" not in marked and "method.name" not in marked  # the demo keeps these defaults
    assert format_keys(Config()).count("\n *") == 0  # the defaults differ from nothing


def test_overrides_alone_are_accepted(capsys):
    assert main(["config", "train.steps=7"]) == 0
    assert any(line.startswith(" *train.steps") for line in capsys.readouterr().out.splitlines())
