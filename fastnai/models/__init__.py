"""Model registry: one package per ``[model].kind`` (``keys``, set-up, cell, output).

Importing a package imports only its ``keys`` (case keys and validation, no Numba); the rest
loads on first use, so loading and validating a case compiles nothing."""

from __future__ import annotations

import importlib
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
