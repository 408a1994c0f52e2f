"""Which precision to compute in: bfloat16 where the CPU does it natively, float32 elsewhere.

On a CPU with AVX-512 BF16 or AMX (`ssp_keras.runtime.native_bfloat16`), oneDNN runs bfloat16
convolutions at about twice the float32 rate: the ``paper`` training step is 1.7x faster under
``mixed_bfloat16`` and ``paper`` inference 1.7x faster in bfloat16, with the same quality
(``benchmarks/RESULTS.md``). Without those instructions TensorFlow emulates bfloat16 and the same
step is ~10x *slower*, so ``auto`` never picks it there. GPUs keep float32 under ``auto`` (ask for
``mixed_float16`` explicitly, or use ``--mixed-precision``).
"""

from __future__ import annotations

import sys

#: ``precision`` values for inference (`ssp_keras.inference.loading.load_generator`).
INFERENCE_PRECISIONS = ("auto", "float32", "bfloat16")

#: What the command line says when bfloat16 would be emulated.
EMULATED_BFLOAT16 = ("this CPU has no native bfloat16 (avx512_bf16 / amx_bf16); TensorFlow emulates it, "
                     "about 10x slower than float32")


def gpu_visible() -> bool:
    """Whether the Keras backend of this process (TensorFlow or JAX) sees a GPU."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return any(device.platform == "gpu" for device in jax.devices())
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def bfloat16_is_fast() -> bool:
    """Whether this process computes on a CPU with native bfloat16 and sees no GPU."""
    from ssp_keras.runtime import native_bfloat16

    return native_bfloat16() and not gpu_visible()


def resolve_inference_precision(precision: str = "auto") -> str:
    """``float32`` or ``bfloat16`` for a requested inference precision (`INFERENCE_PRECISIONS`)."""
    if precision not in INFERENCE_PRECISIONS:
        raise ValueError(f"precision must be one of {list(INFERENCE_PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    return "bfloat16" if bfloat16_is_fast() else "float32"


def resolve_training_precision(precision: str) -> str:
    """The Keras dtype policy for ``train.precision``: ``auto`` becomes ``mixed_bfloat16`` where
    `bfloat16_is_fast`, else ``float32``; the other values are policies already."""
    if precision != "auto":
        return precision
    return "mixed_bfloat16" if bfloat16_is_fast() else "float32"


def mixed_policy() -> str:
    """What ``--mixed-precision`` asks for: ``mixed_float16`` on a GPU, ``mixed_bfloat16`` on a CPU
    with native bfloat16, else float32 (with a note on standard error)."""
    from ssp_keras.runtime import native_bfloat16

    if gpu_visible():
        return "mixed_float16"
    if native_bfloat16():
        return "mixed_bfloat16"
    print(f"--mixed-precision: {EMULATED_BFLOAT16}; training in float32", file=sys.stderr)
    return "float32"
