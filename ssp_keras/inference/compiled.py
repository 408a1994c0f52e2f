"""The generator as one compiled function of images of any size, per backend.

`enhance_tensor` (pad, run, crop, clip) is the one function both local inference and every
exported serving signature run; `compile_for_backend` compiles a function of it for the backend
Keras runs on, and `compiled_enhance` keeps one per model. Shapes and ranges: float32
``[N, H, W, C]`` in [0, 1].
"""

from __future__ import annotations

import weakref
from typing import Callable

import numpy as np

from ssp_keras.errors import InputError
from ssp_keras.inference.tiling import crop_to_size, pad_to_multiple


def enhance_tensor(model, images):
    """The generator applied to images of any size, as backend ops (graph-safe).

    images: float ``[N, H, W, C]`` in [0, 1], any H and W. Returns float32 ``[N, H, W, C]`` in
    [0, 1]: pad to multiples of 32, run ``model`` in inference mode, crop, clip. This is the one
    function both local inference and every exported serving signature run.
    """
    from keras import ops

    padded, size = pad_to_multiple(ops.cast(images, "float32"))
    enhanced = ops.cast(model(padded, training=False), "float32")
    return ops.clip(crop_to_size(enhanced, size), 0.0, 1.0)


def compile_for_backend(model, function) -> Callable:
    """``function(*arrays)`` (which calls ``model``) compiled for the backend Keras runs on.

    TensorFlow: a ``tf.function`` with ``reduce_retracing`` (it generalises to
    ``[None, None, None, C]`` after the second distinct shape instead of tracing every image
    size). JAX: ``jax.jit`` of the function with the model's weights passed in (a
    `keras.StatelessScope`), traced once per input shape. Results are numpy arrays (pytrees of
    them); the returned function's ``compiled`` attribute is the backend's own compiled function.
    """
    import keras

    if keras.backend.backend() == "jax":
        import jax

        variables = model.trainable_variables + model.non_trainable_variables

        def stateless(values, *arrays):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return function(*arrays)

        compiled = jax.jit(stateless)

        def call(*arrays):
            return jax.tree.map(np.asarray, compiled([v.value for v in variables], *arrays))
    else:
        import tensorflow as tf

        compiled = tf.function(function, reduce_retracing=True)

        def call(*arrays):
            return tf.nest.map_structure(lambda value: value.numpy(), compiled(*arrays))

    call.compiled = compiled
    return call


# One compiled function per model.
_COMPILED = weakref.WeakKeyDictionary()


def compiled_enhance(model) -> Callable:
    """`enhance_tensor` of ``model`` compiled once (kept while the model lives): float32 arrays
    ``[N, H, W, C]`` in [0, 1] in, numpy arrays of the same shape out."""
    function = _COMPILED.get(model)
    if function is None:
        function = compile_for_backend(model, lambda images: enhance_tensor(model, images))
        _COMPILED[model] = function
    return function


def model_channels(model) -> int:
    """Image channels a generator expects (``SSPGenerator.channels`` or its input shape)."""
    channels = getattr(model, "channels", None)
    if channels is None:
        shape = model.inputs[0].shape if getattr(model, "inputs", None) else None
        if shape is None or len(shape) != 4 or shape[-1] is None:
            raise InputError(f"model {getattr(model, 'name', model)!r} has no [N, H, W, C] image input")
        channels = int(shape[-1])
    return int(channels)
