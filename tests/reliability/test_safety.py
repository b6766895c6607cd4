"""Nothing in the package can execute a user's file: no pickles, no remote code, no eval.

The checks walk the syntax tree of every module under ``src/excise`` (so comments and
docstrings that mention these calls do not count) and fail naming file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "excise"


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def unsafe_calls(source: str, filename: str = "<string>") -> list[str]:
    """Every unsafe loading or code-execution call in ``source``, as 'file:line: why'."""
    problems = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            for bad in ("pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"):
                if bad in names:
                    problems.append(f"{filename}:{node.lineno}: imports {bad}")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        where = f"{filename}:{node.lineno}"
        if name == "torch.load" and not _is_true(_keyword(node, "weights_only")):
            problems.append(f"{where}: torch.load without weights_only=True")
        if name.endswith(("pickle.load", "pickle.loads", "joblib.load", "marshal.loads")):
            problems.append(f"{where}: {name} unpickles")
        if name in ("eval", "exec", "compile", "builtins.eval", "builtins.exec"):
            problems.append(f"{where}: {name}() runs code")
        if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load"):
            problems.append(f"{where}: {name} (use yaml.safe_load)")
        if _is_true(_keyword(node, "trust_remote_code")):
            problems.append(f"{where}: trust_remote_code=True")
        if _is_true(_keyword(node, "allow_pickle")):
            problems.append(f"{where}: allow_pickle=True")
        if (
            name.endswith("from_pretrained")
            and "AutoModel" in name
            and not _is_true(_keyword(node, "use_safetensors"))
        ):
            problems.append(f"{where}: {name} without use_safetensors=True may unpickle a .bin")
        if _is_true(_keyword(node, "shell")):
            problems.append(f"{where}: subprocess with shell=True")
    return problems


def test_the_checker_catches_each_unsafe_pattern():
    bad = """
import pickle
torch.load(path)
torch.load(path, weights_only=False)
pickle.loads(data)
eval(user_text)
exec(user_text)
yaml.load(text)
AutoModelForCausalLM.from_pretrained(p, trust_remote_code=True)
np.load(p, allow_pickle=True)
subprocess.run(cmd, shell=True)
"""
    found = unsafe_calls(bad)
    assert len(found) == 11, found  # from_pretrained counts twice (remote code, no safetensors)
    good = "torch.load(p, weights_only=True)\nyaml.safe_load(t)\nmodel.eval()\nAutoModelForCausalLM.from_pretrained(p, use_safetensors=True)\n"
    assert unsafe_calls(good) == []


def test_package_source_loads_nothing_unsafely():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    problems = [
        p for f in files for p in unsafe_calls(f.read_text(encoding="utf-8"), str(f.relative_to(SRC.parent)))
    ]
    assert problems == []


def test_checkpoint_state_refuses_pickled_objects(tmp_path):
    """train_state.pt is read with weights_only=True: an object with a __reduce__ is refused."""
    import torch

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "train_state.pt"
    torch.save({"optimizer": Payload()}, path)
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        torch.load(path, weights_only=True)


def test_data_path_that_does_not_exist_is_a_user_error_naming_the_key(tmp_path):
    from excise.config import load_config
    from excise.data import prepare_data
    from excise.errors import UserError

    (tmp_path / "es.jsonl").write_text('{"text": "hola"}\n')
    config = load_config(
        None, [f"data.retain.path={tmp_path}/missing.jsonl", f"data.forget.path={tmp_path}/es.jsonl"]
    )
    with pytest.raises(UserError, match=r"data\.retain\.path: file .*missing\.jsonl does not exist"):
        prepare_data(config, run_dir=None, progress=False)
