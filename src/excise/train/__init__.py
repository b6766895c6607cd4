"""Training: the loop (:mod:`excise.train.runner`), the SGTM step, optimizer, checkpoints.

Calling the package, ``excise.train(config, out, ...)``, is :func:`excise.api.train`.
"""

from excise._callable import make_callable

make_callable(__name__, "train")
