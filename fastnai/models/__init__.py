"""Model registry: one package per ``[model].kind`` (``keys``, set-up, cell, output).

Importing a package imports only its ``keys`` (case keys and validation, no Numba); the rest
loads on first use, so loading and validating a case compiles nothing."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from types import ModuleType

#: Kinds this version can run.
MODEL_KINDS = ("band_bending", "drift_diffusion", "film_stress", "deposition")

#: Kinds of SPEC section 3 that are not built yet (asking for one is a clear error).
PLANNED_KINDS: tuple[str, ...] = ()


def model_module(kind: str) -> ModuleType:
    """The package implementing ``kind`` (``fastnai.models.<kind>``)."""
    if kind not in MODEL_KINDS:
        raise KeyError(kind)
    return importlib.import_module(f"fastnai.models.{kind}")


#: Names a model's ``keys`` defines (or lacks): looking them up never imports the rest.
KEYS_ONLY = ("KEYS", "STEP_KEYS", "TABLE_ARRAYS", "validate", "time_dependent")


def lazy_package(name: str, submodules: tuple[str, ...]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for the model package ``name``.

    A submodule's name gives the submodule; any other name is looked up in the submodules
    in order (the first that defines it wins) and imported on first use, so importing the
    package imports only what its ``__init__`` imports (its ``keys``: no Numba).
    """

    def getattr_(attr: str):
        if attr in submodules:
            return importlib.import_module(f"{name}.{attr}")
        if not attr.startswith("__") and attr not in KEYS_ONLY:
            for sub in submodules:
                namespace = vars(importlib.import_module(f"{name}.{sub}"))
                if attr in namespace:
                    value = namespace[attr]
                    setattr(sys.modules[name], attr, value)
                    return value
        raise AttributeError(f"module {name!r} has no attribute {attr!r}")

    def dir_():
        names = set(vars(sys.modules[name]))
        for sub in submodules:
            names |= {k for k in vars(importlib.import_module(f"{name}.{sub}"))
                      if not k.startswith("__")}
        return sorted(names)

    return getattr_, dir_
