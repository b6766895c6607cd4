"""Shared constants of the report / sweep / demo tests."""

# The tiny model of the brief: trains 6 steps in about a second.
TINY = [
    "model.vocab_size=320", "model.context=32", "model.n_layers=2", "model.d_model=32",
    "model.n_heads=4", "model.d_ff=64", "partition.forget_heads=1",
    "partition.forget_mlp_units=16", "data.builtin_documents=60", "train.batch_size=4",
    "train.steps=6", "train.warmup_steps=1", "train.threads=1", "eval.max_tokens=512",
    "eval.calibration_steps=3", "logging.progress=false", "logging.every=1",
]  # fmt: skip
