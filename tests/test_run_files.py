"""The run directory's schema: writers validate, the strict reader names what is wrong, the
lenient reader never raises, and values read back exactly as written."""

from __future__ import annotations

import json

import pytest

from excise.errors import UserError
from excise.run_files import (
    EvalRecord,
    RelearnRecord,
    Summary,
    TrainSummary,
    UnlearnSummary,
    read_events,
    read_record,
    read_record_lenient,
    write_record,
)  # fmt: skip

SUMMARY = {"method": "sgtm", "steps": 3, "tokens": 96, "eval": {"full": {"forget": 5.0, "retain": 4}},
           "a_later_key": [1, 2]}  # fmt: skip


def test_a_written_record_reads_back_exactly_with_its_extra_keys(tmp_path):
    path = tmp_path / "summary.json"
    write_record(path, TrainSummary, SUMMARY)
    assert read_record(path, TrainSummary) == SUMMARY
    assert read_record(path, Summary) == SUMMARY
    assert json.loads(path.read_text())["eval"]["full"]["retain"] == 4  # an int stays an int
    assert read_record_lenient(path, UnlearnSummary) is None  # a train summary is not an unlearn one


def test_writing_an_invalid_record_is_refused_and_leaves_no_file(tmp_path):
    path = tmp_path / "eval.json"
    with pytest.raises(ValueError, match="field full.forget"):
        write_record(path, EvalRecord, {"full": {"forget": "low"}})
    assert not path.exists()


@pytest.mark.parametrize("content, says", [
    (None, "does not exist"),
    ("{\"full\": ", "is not valid JSON"),
    ("[1, 2]", "holds list, not a JSON object"),
    ("{\"ablated\": {\"forget\": 1.0}}", "field full: Field required"),
    ("{\"full\": {\"forget\": 1.0}, \"partitioned\": \"maybe\"}", "field partitioned"),
])  # fmt: skip
def test_the_strict_reader_names_the_file_and_what_is_wrong(tmp_path, content, says):
    path = tmp_path / "eval.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError) as e:
        read_record(path, EvalRecord)
    assert str(path) in str(e.value) and says in str(e.value)
    assert read_record_lenient(path, EvalRecord) is None


def test_a_relearn_curve_needs_its_steps_and_losses(tmp_path):
    path = tmp_path / "relearn.json"
    path.write_text(json.dumps({"steps": [0, 10], "forget_loss": [6.0, 2.0], "steps_to_recover": None}))
    assert read_record(path, RelearnRecord)["forget_loss"] == [6.0, 2.0]
    path.write_text(json.dumps({"steps_to_recover": 10}))
    assert read_record_lenient(path, RelearnRecord) is None


def test_events_skip_lines_cut_by_a_kill_and_lines_that_are_not_events(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"event": "train", "step": 1, "loss": 4.0}\n'
                    '{"event": "eval", "step": 2}\n'
                    '{"note": "no event"}\n'
                    '{"event": "train", "st\n')  # fmt: skip
    assert [e["step"] for e in read_events(path)] == [1, 2]
    assert read_events(tmp_path / "absent.jsonl") == []
