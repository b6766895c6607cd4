"""Make the subpackages ``excise.train`` and ``excise.export`` callable as the API functions.

``excise.train(...)`` and ``excise.export(...)`` are the Python API (:mod:`excise.api`), but
``excise.train`` and ``excise.export`` are also subpackages, and importing a submodule
(``excise.train.runner``) rebinds the package attribute to the subpackage. So the
subpackage itself forwards calls to the API function: both meanings hold whatever was
imported first.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types


class _CallableModule(types.ModuleType):
    def _api_function(self):
        return getattr(importlib.import_module("excise.api"), self.__dict__["_excise_api"])

    def __call__(self, *args, **kwargs):
        return self._api_function()(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self._api_function())


def make_callable(module_name: str, api_name: str) -> None:
    """Let ``sys.modules[module_name](...)`` call ``excise.api.<api_name>(...)``."""
    module = sys.modules[module_name]
    module._excise_api = api_name
    module.__class__ = _CallableModule
