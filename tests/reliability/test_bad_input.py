"""Bad input everywhere → exit code 2, one paragraph naming the problem, no traceback.

Each case runs ``excise.cli.main`` in this process (the same code path as the command,
without paying a torch import per case); ``test_cli_subprocess`` runs a few cases as real
``python -m excise`` processes, and the slow test runs all of them that way. Hypothesis
throws random dotted overrides at the config loader and random lines at the data reader.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import TINY, assert_user_error, run_cli, tiny_config

from excise.cli import main
from excise.config import Config, ConfigError, DataSource, load_config
from excise.data.sources import read_documents
from excise.errors import UserError
from excise.train.runner import train

TRAIN = [*TINY, "train.steps=1"]


@dataclass
class Case:
    name: str
    argv: list[str]  # "{tmp}" is replaced by the case's directory
    needles: tuple[str, ...]
    files: dict[str, bytes] | None = None  # written into {tmp} first
    finished_run: str | None = None  # copy the finished run here, then apply files


def jsonl(*rows) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


GOOD = jsonl(*[{"text": f"uno dos tres cuatro cinco {i}"} for i in range(40)])
EN = jsonl(*[{"text": f"one two three four five {i}"} for i in range(40)])


def train_case(name, overrides, needles, files=None, recipe=b"{}\n"):
    return Case(name, ["train", "{tmp}/recipe.yaml", *TRAIN, *overrides, "--out", "{tmp}/run"],
                needles, {"recipe.yaml": recipe, **(files or {})})  # fmt: skip


def data_case(name, content: bytes, needles, text_field="text"):
    overrides = ["data.retain.path={tmp}/en.jsonl", "data.forget.path={tmp}/es.jsonl",
                 f"data.forget.text_field={text_field}"]  # fmt: skip
    return train_case(name, overrides, ("es.jsonl", *needles),
                      files={"en.jsonl": EN, "es.jsonl": content})  # fmt: skip


CASES = [
    # configs
    train_case("unknown key", ["train.stepz=3"], ("train.stepz", "unknown key")),
    train_case("unknown section", ["modle.d_model=8"], ("modle", "unknown key")),
    train_case("wrong type", ["train.steps=many"], ("train.steps", "integer")),
    train_case("list for a number", ["train.lr=[1, 2]"], ("train.lr",)),
    train_case("negative steps", ["train.steps=-1"], ("train.steps", "greater than or equal")),
    train_case("more forget heads than heads", ["partition.forget_heads=5"], ("partition.forget_heads", "model.n_heads")),
    train_case("forget units fill the MLP", ["partition.forget_mlp_units=64"], ("partition.forget_mlp_units", "model.d_ff")),
    train_case("recall above 1", ["labels.recall=1.5"], ("labels.recall", "less than or equal to 1")),
    train_case("recall below 0", ["labels.recall=-0.1"], ("labels.recall", "greater than or equal to 0")),
    train_case("precision and fpr", ["labels.precision=0.5", "labels.fpr=0.1"], ("labels.precision", "labels.fpr")),
    train_case("micro-batch not dividing batch", ["train.micro_batch_size=3"], ("train.micro_batch_size", "train.batch_size")),
    train_case("d_model not divisible by heads", ["model.d_model=30"], ("d_model", "n_heads")),
    train_case("unknown method", ["method.name=magic"], ("method.name", "magic")),
    train_case("layers outside the model", ["partition.layers=[0, 7]"], ("partition.layers", "model.n_layers")),
    train_case("override without =", ["train.steps"], ("train.steps", "dotted.key=value")),
    train_case("override into a value", ["seed.x=1"], ("seed",)),
    train_case("invalid YAML", [], ("recipe.yaml", "not valid YAML"), recipe=b"model: [unclosed\n"),
    train_case("YAML list at top level", [], ("recipe.yaml", "mapping"), recipe=b"- 1\n- 2\n"),
    train_case("non-UTF-8 config", [], ("recipe.yaml", "not UTF-8"), recipe=b"seed: \xff\xfe\n"),
    Case("missing config file", ["train", "{tmp}/nope.yaml", "--out", "{tmp}/run"], ("nope.yaml", "does not exist")),
    train_case("missing data file", ["data.retain.path={tmp}/nope.jsonl", "data.forget.path={tmp}/es.jsonl"],
               ("data.retain.path", "nope.jsonl", "does not exist"), files={"es.jsonl": GOOD}),
    train_case("data file of unknown format", ["data.retain.path={tmp}/en.docx", "data.forget.path={tmp}/es.jsonl"],
               ("data.retain.path", "unknown format"), files={"en.docx": b"a,b\n", "es.jsonl": GOOD}),
    train_case("missing tokenizer file", ["tokenizer.path={tmp}/tok.json"], ("tok.json",)),
    train_case("run dir is a file", ["--overwrite"], ("is not a directory",), files={"run": b"x"}),
    # data files
    data_case("empty data file", b"", ("no documents",)),
    data_case("blank lines only", b"\n  \n\n", ("no documents",)),
    data_case("malformed JSON line", GOOD + b'{"text": "unterminated\n', ("line 41", "malformed JSON")),
    data_case("JSON line not an object", b'["text"]\n', ("line 1", "JSON object")),
    data_case("missing text field", jsonl({"body": "hola"}), ("line 1", "no key 'text'", "body")),
    data_case("text field not a string", jsonl({"text": 3}), ("line 1", "int, not text")),
    data_case("non-UTF-8 line", GOOD + b'{"text": "ma\xf1ana"}\n', ("line 41", "UTF-8")),
    data_case("lone surrogate escape", GOOD + b'{"text": "a \\ud800 b"}\n', ("line 41", "surrogate")),
    data_case("wrong text_field", GOOD, ("no key 'body'",), text_field="body"),
    # run directories
    Case("eval of an empty directory", ["eval", "{tmp}/empty"], ("not a run directory", "config.yaml"), {"empty/.keep": b""}),
    Case("eval of a missing directory", ["eval", "{tmp}/nowhere"], ("nowhere", "does not exist")),
    Case("export of an empty directory", ["export", "{tmp}/empty", "--out", "{tmp}/hf"], ("not a run directory",), {"empty/.keep": b""}),
    Case("relearn of an empty directory", ["relearn", "{tmp}/empty"], ("not a run directory",), {"empty/.keep": b""}),
    Case("unlearn of an empty directory", ["unlearn", "rmu", "{tmp}/empty", "--out", "{tmp}/u"], ("not a run directory",), {"empty/.keep": b""}),
    Case("run without weights", ["eval", "{tmp}/run"], ("model.safetensors",), finished_run="run",
         files={"run/model.safetensors": None}),
    Case("weights that are not safetensors", ["eval", "{tmp}/run"], ("model.safetensors", "not a readable safetensors"),
         finished_run="run", files={"run/model.safetensors": b"garbage"}),
    Case("config.yaml of another shape", ["eval", "{tmp}/run"], ("partition.json", "does not fit the model"), finished_run="run",
         files={"run/config.yaml": "reshape"}),
    Case("broken config.yaml", ["eval", "{tmp}/run"], ("config.yaml", "not valid YAML"), finished_run="run",
         files={"run/config.yaml": b"model: {\n"}),
    Case("resume with another model.d_model", ["train", "{tmp}/recipe.yaml", *TINY, "train.steps=4", "checkpoint.every=2",
         "model.d_model=64", "--out", "{tmp}/run", "--resume"], ("another model shape", "was written for"),
         {"recipe.yaml": b"{}\n"}, finished_run="run"),
]  # fmt: skip


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    train(tiny_config("train.steps=4", "checkpoint.every=2"), run)
    return run


def materialise(case: Case, tmp: Path, finished: Path | None) -> list[str]:
    if case.finished_run:
        shutil.copytree(finished, tmp / case.finished_run)
    for name, content in (case.files or {}).items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.unlink()
        elif content == "reshape":
            config = yaml.safe_load(path.read_text())
            config["model"]["d_model"] = 64
            path.write_text(yaml.safe_dump(config))
        else:
            path.write_bytes(content)
    return [a.replace("{tmp}", str(tmp)) for a in case.argv]


def needs_run(case: Case) -> bool:
    return case.finished_run is not None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_a_one_paragraph_user_error(case, tmp_path, request, capsys):
    finished = request.getfixturevalue("finished_run") if needs_run(case) else None
    argv = materialise(case, tmp_path, finished)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    message = err.strip().splitlines()
    message = "\n".join(line for line in message if not line.startswith("excise: "))  # progress notes
    assert message.startswith(f"excise {argv[0]}: error: "), message
    assert "\n\n" not in message
    for needle in case.needles:
        assert needle in message, (needle, message)


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "r.yaml").write_text("{}\n")
    with pytest.raises(ConfigError, match="train.stepz"):
        main(["--debug", "train", str(tmp_path / "r.yaml"), "train.stepz=1", "--out", str(tmp_path / "o")])


SUBPROCESS_CASES = ["unknown key", "malformed JSON line", "eval of an empty directory"]


def _subprocess_case(case: Case, tmp_path: Path, finished: Path | None) -> None:
    argv = materialise(case, tmp_path, finished)
    done = run_cli(*argv, cache=tmp_path / "cache")
    assert_user_error(done, f"excise {argv[0]}: error: ", *case.needles)


def test_cli_subprocess_exit_code_and_message(tmp_path):
    case = next(c for c in CASES if c.name == "unknown key")
    _subprocess_case(case, tmp_path, None)
    (tmp_path / "debug").mkdir()
    argv = materialise(case, tmp_path / "debug", None)
    done = run_cli("--debug", *argv, cache=tmp_path / "cache")
    assert done.returncode != 0 and "Traceback" in done.stderr and "ConfigError" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_as_a_real_process(case, tmp_path, request):
    finished = request.getfixturevalue("finished_run") if needs_run(case) else None
    _subprocess_case(case, tmp_path, finished)


# ---------------------------------------------------------------------------------------
# property-based: random overrides and random data files

KNOWN_KEYS = [
    f"{section}.{name}"
    for section, model in Config.model_fields.items()
    if hasattr(model.annotation, "model_fields")
    for name in model.annotation.model_fields
] + ["seed"]
VALUES = st.one_of(
    st.integers(-(2**40), 2**40).map(str), st.floats(allow_nan=True).map(repr), st.booleans().map(str),
    st.sampled_from(["", "null", "[]", "{}", "[1, 2]", "{a: 1}", "'x'", "-0", "1e999", "nan", "~", ":", "[", "!!python/object:os.system"]),
    st.text(max_size=12),
)  # fmt: skip
KEYS = st.one_of(
    st.sampled_from(KNOWN_KEYS),
    st.lists(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), min_size=1, max_size=3).map(".".join),
)


def names_the_key(message: str, key: str) -> bool:
    parts = key.split(".")
    prefixes = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
    return any(p in message for p in prefixes) or parts[-1] in message


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides=st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=3))
def test_random_overrides_validate_or_name_the_key(overrides):
    texts = [f"{k}={v}" for k, v in overrides]
    try:
        config = load_config(None, texts)
    except ConfigError as e:
        message = str(e)
        assert any(names_the_key(message, k) for k, _ in overrides), (texts, message)
    else:
        assert isinstance(config, Config)


LINES = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40).map(lambda t: json.dumps({"text": t}).encode()),
    st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=8), st.integers(), st.none()), max_size=3).map(lambda d: json.dumps(d).encode()),
    st.sampled_from([b"", b"{", b"null", b'"text"', b'{"text": "\\ud83d"}', b"\xef\xbb\xbf{}", b'{"text": "ok"}']),
)  # fmt: skip


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINES, max_size=6))
def test_random_data_files_read_or_raise_a_user_error(lines, tmp_path):
    path = tmp_path / "random.jsonl"
    path.write_bytes(b"\n".join(lines))
    try:
        documents = read_documents(DataSource(path=str(path)), "forget")
    except UserError as e:
        assert str(path) in str(e) or "data.forget" in str(e)
    else:
        assert documents and all(isinstance(d, str) and d.strip() for d in documents)
        for d in documents:
            d.encode("utf-8")  # every document can go on to the tokenizer


@pytest.mark.parametrize(
    "error",
    [
        PermissionError(13, "Permission denied", "/runs/x"),
        OSError(28, "No space left on device", "/runs/x/tok"),
    ],
)
def test_environment_errors_are_user_errors_but_other_bugs_are_not(error, tmp_path, monkeypatch, capsys):
    from excise.train import runner

    def fail(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(runner, "prepare_run_dir", fail)
    (tmp_path / "r.yaml").write_text("{}\n")
    argv = ["train", str(tmp_path / "r.yaml"), *TRAIN, "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"excise train: error: {error.strerror}: {error.filename}"
    with pytest.raises(OSError):
        main(["--debug", *argv])
    monkeypatch.setattr(
        runner, "prepare_run_dir", lambda *a, **k: (_ for _ in ()).throw(OSError(5, "I/O error"))
    )
    with pytest.raises(OSError):  # not the user's doing: the traceback stays
        main(argv)
