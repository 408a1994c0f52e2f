"""Checks on model variables shared by training (before anything is saved) and loading."""

from __future__ import annotations

from typing import Iterable, List, Tuple


def non_finite_variables(named_variables: Iterable[Tuple[str, object]]) -> List[str]:
    """Names of the floating-point variables among ``(name, variable)`` holding a NaN or an Inf.

    Computed with ``keras.ops`` on the variables where they live (any backend, any device); only a
    boolean per variable comes back to the host.
    """
    import keras

    return [
        name for name, variable in named_variables
        if keras.backend.is_float_dtype(variable.dtype) and not bool(keras.ops.all(keras.ops.isfinite(variable)))
    ]
