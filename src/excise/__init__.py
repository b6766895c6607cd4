"""excise: train language models whose unwanted knowledge can be cut out afterwards.

The Python API mirrors the command line (see :mod:`excise.api` and ``docs/api.md``):
``excise.train``, ``excise.evaluate``, ``excise.unlearn``, ``excise.relearn``,
``excise.export``, ``excise.import_hf``, ``excise.load``, ``excise.sample`` and
``excise.load_config``. They are imported on first use, so ``import excise`` stays light.
"""

__version__ = "0.1.0"

_API = ("evaluate", "import_hf", "load", "load_config", "relearn", "sample", "unlearn")
_CALLABLE_PACKAGES = ("train", "export")  # subpackages that are also API functions


def __getattr__(name: str):
    import importlib

    if name in _CALLABLE_PACKAGES:
        return importlib.import_module(f"excise.{name}")
    if name in _API:
        return getattr(importlib.import_module("excise.api"), name)
    raise AttributeError(f"module 'excise' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API, *_CALLABLE_PACKAGES])
