"""Evaluation: domain losses, logit calibration, probes, the relearning attack, absorption.

Imports are lazy in the submodules' users; the public entry points are
:func:`excise.eval.evaluate.evaluate_run` (eval.json), :func:`excise.eval.relearn.relearn_run`
(relearn.json), :func:`excise.eval.losses.domain_loss`,
:func:`excise.eval.calibration.fit_output_bias` and
:func:`excise.eval.absorption.gradient_norms`.
"""
