"""The Python API: the example in docs/api.md runs, and the commands go through the API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(markdown: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown.read_text(encoding="utf-8"), flags=re.S)


def test_docs_api_example_runs(tmp_path, monkeypatch, capsys):
    """Every python block of docs/api.md, in order, in a fresh folder (the recipe linked in)."""
    pytest.importorskip("transformers", reason="the example loads a transformers model")
    blocks = python_blocks(ROOT / "docs" / "api.md")
    assert blocks, "docs/api.md has no python block"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXCISE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    namespace: dict = {"__name__": "docs_api"}
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "GPTNeoForCausalLM" in out and "parameters" in out
    losses = namespace["losses"]
    assert losses["ablated"]["forget"] > losses["full"]["forget"]  # removal shows even at 20 steps
    assert (tmp_path / "exported" / "sgtm-safe" / "model.safetensors").is_file()
    assert (tmp_path / "runs" / "rmu" / "model.safetensors").is_file()


def test_package_functions_and_callable_subpackages():
    import inspect

    import excise
    import excise.export.hf  # noqa: F401  (rebinds excise.export to the subpackage)
    import excise.train.runner  # noqa: F401
    from excise import api

    for name in (
        "train",
        "evaluate",
        "unlearn",
        "relearn",
        "export",
        "import_hf",
        "load",
        "sample",
        "load_config",
    ):
        assert callable(getattr(excise, name)), name
        assert inspect.signature(getattr(excise, name)) == inspect.signature(getattr(api, name)), name
        assert getattr(api, name).__doc__, name
    with pytest.raises(AttributeError):
        excise.no_such_function  # noqa: B018


def test_commands_call_the_api(tmp_path, monkeypatch, capsys):
    """The CLI is a thin layer over excise.api (same arguments reach the same function)."""
    from excise import api
    from excise.cli import main

    calls = []

    def recorder(name, result):
        def record(*args, **kwargs):
            calls.append((name, args, kwargs))
            return result

        return record

    monkeypatch.setattr(api, "evaluate", recorder("evaluate", {"full": {"forget": 1.0}}))
    monkeypatch.setattr(api, "sample", recorder("sample", ["hello"]))
    monkeypatch.setattr(api, "relearn", recorder("relearn", {
        "steps": [0], "forget_loss": [2.0], "retain_loss": [None], "reference_forget_loss": None,
    }))  # fmt: skip
    assert main(["eval", "runs/x", "eval.max_tokens=64", "--no-calibration"]) == 0
    assert (
        main(["sample", "runs/x", "--prompt", "hi", "--temperature", "0.5", "--top-k", "0", "--no-stop"]) == 0
    )
    assert main(["relearn", "runs/x", "--steps", "3"]) == 0
    assert calls[0] == ("evaluate", ("runs/x", ["eval.max_tokens=64"]), {"calibrate": False})
    assert calls[1][1] == ("runs/x", "hi") and calls[1][2] | {} == {
        "n": 3, "max_new_tokens": 64, "temperature": 0.5, "top_k": None, "ablated": False,
        "stop_at_end": False, "seed": 0,
    }  # fmt: skip
    assert calls[2] == ("relearn", ("runs/x",), {"steps": 3, "reference": None, "overrides": []})


def test_overrides_as_dict_keep_their_types():
    from excise.api import load_config

    cfg = load_config(None, {"train.steps": 7, "labels.recall": 0.5, "partition.layers": [0, 1],
                             "method.name": "weak_filter", "logging.progress": False})  # fmt: skip
    assert (cfg.train.steps, cfg.labels.recall, cfg.partition.layers) == (7, 0.5, [0, 1])
    assert cfg.method.name == "weak_filter" and cfg.logging.progress is False
    assert load_config(cfg, ["train.steps=9"]).train.steps == 9
