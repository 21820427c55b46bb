"""Model registry: one module per ``[model].kind``, imported on first use."""

from __future__ import annotations

import importlib
from types import ModuleType

#: Kinds this version can run.
MODEL_KINDS = ("band_bending", "drift_diffusion", "film_stress", "deposition")

#: Kinds of SPEC section 3 that are not built yet (asking for one is a clear error).
PLANNED_KINDS: tuple[str, ...] = ()


def model_module(kind: str) -> ModuleType:
    """The module implementing ``kind`` (``fastnai.models.<kind>``)."""
    if kind not in MODEL_KINDS:
        raise KeyError(kind)
    return importlib.import_module(f"fastnai.models.{kind}")
