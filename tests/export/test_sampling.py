"""Sampling: transformers' generate (KV cache) and excise's loop agree; stop, temperature, top-k."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")

from hf_helpers import LLAMA, NEO, tiny_config, tiny_model  # noqa: E402

from excise.config import PartitionConfig  # noqa: E402
from excise.errors import UserError  # noqa: E402
from excise.eval.sampling import sample_ids, to_hf  # noqa: E402
from excise.model.ablation import ablated_copy  # noqa: E402

PCFG = PartitionConfig(forget_heads=1, forget_mlp_units=8)
PROMPT = [3, 17, 5]


@pytest.mark.parametrize("shape", ["neo", "llama"])
def test_backends_agree_and_stop_at_end(shape):
    model, partition = tiny_model(tiny_config(**(NEO if shape == "neo" else LLAMA)), PCFG)
    for m in (model,) if shape == "neo" else (ablated_copy(model, partition),):
        hf = to_hf(m)
        with torch.no_grad():  # the in-memory conversion computes the same logits
            torch.testing.assert_close(
                hf(torch.tensor([PROMPT])).logits, m(torch.tensor([PROMPT])), rtol=1e-6, atol=1e-6
            )
        greedy = {b: sample_ids(m, PROMPT, 10, temperature=0, backend=b) for b in ("transformers", "excise")}
        assert greedy["transformers"] == greedy["excise"] and len(greedy["excise"]) == 10
        # top-k 1 sampling is greedy whatever the temperature and seed
        for b in ("transformers", "excise"):
            assert sample_ids(m, PROMPT, 10, temperature=1.5, top_k=1, seed=7, backend=b) == greedy["excise"]
        # stop after the first occurrence of the stop token, on both backends
        stop = greedy["excise"][3]
        first = greedy["excise"].index(stop)
        for b in ("transformers", "excise"):
            assert (
                sample_ids(m, PROMPT, 10, temperature=0, stop_id=stop, backend=b)
                == greedy["excise"][: first + 1]
            )
        # sampling: seeded, and actually random (different seeds differ somewhere)
        runs = [
            tuple(sample_ids(m, PROMPT, 10, temperature=2.0, top_k=None, seed=s, hf_model=hf))
            for s in range(4)
        ]
        assert runs[0] == tuple(sample_ids(m, PROMPT, 10, temperature=2.0, top_k=None, seed=0, hf_model=hf))
        assert len(set(runs)) > 1


def test_learned_positions_past_the_context_slide_the_window():
    model, _ = tiny_model(tiny_config(**NEO), PCFG)  # context 16
    out = sample_ids(model, PROMPT, 20, temperature=0)  # auto: the excise loop slides
    assert len(out) == 20
    with pytest.raises(UserError, match="exceed the context"):
        sample_ids(model, PROMPT, 20, temperature=0, backend="transformers")
    with pytest.raises(UserError, match="temperature"):
        sample_ids(model, PROMPT, 2, temperature=-1)


def test_sample_command(tmp_path, make_run, capsys):
    from excise.cli import main

    run_dir = make_run(tiny_config(**NEO), PCFG)
    args = ["sample", str(run_dir), "--prompt", "the cat", "--tokens", "5", "-n", "2", "--temperature", "0"]
    assert main(args + ["--ablated"]) == 0
    out = capsys.readouterr().out
    assert out.count("--- sample") == 2 and "(ablated)" in out and out.count("the cat") >= 2
    texts = __import__("excise").sample(
        run_dir, "the cat", n=2, max_new_tokens=5, temperature=0, ablated=True
    )
    assert texts[0] == texts[1] and all(t.startswith("the cat") for t in texts)  # greedy: same twice
