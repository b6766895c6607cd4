"""Post-hoc methods applied to a trained run: the unlearning baselines (RMU, gradient
ascent, gradient difference, NPO) of :mod:`excise.methods.unlearn`."""
