"""Exporting a generator as an ONNX model (``ssp-net export --format onnx``), beside the SavedModel.

Needs the optional extra ``pip install "ssp-keras[onnx]"`` (tf2onnx and onnxruntime, versions
pinned in setup.cfg and tested with TensorFlow 2.21 / Keras 3.15 / numpy 2). Without it,
`export_onnx` raises `OnnxUnavailableError`, which the command line prints as one line.

Layout: ``<base>/<name>/<version>/model.onnx``, the layout of an ONNX model repository for NVIDIA
Triton (and the same versioning as the SavedModel export: integer versions, the next free one by
default, built in a hidden ``.tmp-*`` sibling and renamed into place, never overwritten).

The graph: input ``images`` float32 ``[N, H, W, C]`` in [0, 1] with N, H and W free, output
``enhanced`` float32 of the same shape in [0, 1] -- the SavedModel's ``enhance_float`` signature.
The reflect-padding to a multiple of 32 and the crop back are part of the graph (it is converted
from a `tf.function` of `ssp_keras.inference.enhance.enhance_tensor`, the function
``ssp-net enhance`` runs), so any image size works and results equal local inference.

TensorFlow's ``Log1p`` (in the generator's ``InputSkip`` output layer) has no tf2onnx 1.17 handler;
it is converted here as ``Log(1 + x)``, which is exact to float32 rounding for the layer's
arguments (``-x`` with ``x`` clipped to ``[1e-3, 1 - 1e-3]``). One tf2onnx graph optimiser is
switched off for the conversion: it sometimes gave the output a spurious leading dimension (see
`DISABLED_OPTIMIZERS`); the declared output shape is checked as well.

After converting, the export runs the ONNX model with onnxruntime on one odd-sized image and
compares it with Keras (`ExportOnnxResult.max_abs_difference`); a mismatch beyond the tolerance
aborts the export and nothing is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
from typing import Optional

from ssp_keras.errors import InputError

#: The file inside ``<base>/<name>/<version>/`` (Triton's default model file name for ONNX).
ONNX_FILE = "model.onnx"
INPUT_IMAGES = "images"
OUTPUT_ENHANCED = "enhanced"
#: ONNX opset of the exported graph (onnxruntime >= 1.12, TensorRT 8.6+, Triton's ONNX backend).
DEFAULT_OPSET = 17
#: Shape of the check image run through both Keras and onnxruntime (odd on purpose: pad + crop).
CHECK_SHAPE = (1, 37, 53)
#: Largest allowed |ONNX - Keras| on the check image: a quarter of an 8-bit grey level for float32
#: models (measured: ~3e-6 for the test model, ~2e-4 for a randomised ``paper`` generator, whose
#: instance norms amplify rounding differences), 1e-2 for float16/bfloat16 compute. A wrong
#: conversion is off by far more.
TOLERANCE_FLOAT32 = 1e-3
TOLERANCE_REDUCED = 1e-2

_INSTALL_HINT = 'pip install "ssp-keras[onnx]"'


class OnnxUnavailableError(InputError):
    """tf2onnx or onnxruntime is missing (or cannot convert): the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class ExportOnnxResult:
    """Where `export_onnx` wrote (``path`` = ``<base>/<name>/<version>/model.onnx``) and how it checked."""

    path: str
    name: str
    version: int
    opset: int
    max_abs_difference: Optional[float]  # ONNX vs Keras on the check image; None when not checked


def require_onnx_tools():
    """``(tf2onnx, onnxruntime)`` modules, or `OnnxUnavailableError` saying how to install them."""
    try:
        import tf2onnx
    except ImportError as error:
        raise OnnxUnavailableError(
            f"--format onnx needs tf2onnx and onnxruntime, which are not installed ({error}); "
            f"install them with: {_INSTALL_HINT}"
        ) from None
    try:
        import onnxruntime
    except ImportError as error:
        raise OnnxUnavailableError(
            f"--format onnx needs onnxruntime to check the converted model ({error}); "
            f"install it with: {_INSTALL_HINT}"
        ) from None
    return tf2onnx, onnxruntime


def enhance_function(model):
    """The `tf.function` that is converted: ``images`` float32 ``[None, None, None, C]`` ->
    ``{"enhanced": ...}``, padding and cropping included (`enhance_tensor`)."""
    import tensorflow as tf

    from ssp_keras.inference.compiled import enhance_tensor, model_channels

    channels = model_channels(model)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32, name=INPUT_IMAGES)])
    def enhance(images):
        return {OUTPUT_ENHANCED: enhance_tensor(model, images)}

    return enhance


def _log1p_handler(ctx, node, name, args):
    """tf2onnx handler (old-style ``custom_op_handlers`` API) for TensorFlow's ``Log1p``: ``Log(x + 1)``.

    The node itself becomes the ``Log`` (keeping its output name, shape and dtype); the ``Add`` is
    inserted in front of it.
    """
    import numpy as np
    from tf2onnx import utils

    dtype = ctx.get_dtype(node.input[0])
    one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype=utils.map_onnx_to_numpy_type(dtype)))
    plus_one = ctx.make_node("Add", [node.input[0], one.output[0]], name=utils.make_name(f"{node.name}_plus_one"),
                             shapes=[ctx.get_shape(node.input[0])], dtypes=[dtype])
    ctx.replace_inputs(node, [plus_one.output[0]])
    node.type = "Log"


#: TensorFlow ops tf2onnx 1.17 cannot convert by itself, with the handlers used instead.
CUSTOM_OP_HANDLERS = {"Log1p": (_log1p_handler, [])}

#: tf2onnx graph optimisers switched off for the conversion. tf2onnx 1.17's ``reshape_optimizer``
#: turns a ``Reshape`` with a run-time shape into one with a constant shape; where that needs it,
#: it reshapes to a rank-5 ``[1, ...]`` shape and appends a ``Squeeze`` that it wires to the old
#: output's consumers only. On the final ``Reshape`` (the transpose optimiser's stand-in for the
#: NCHW -> NHWC transpose of the 1-channel output) that is the graph output whenever tf2onnx has
#: already dropped the ``Identity`` in front of the output, which depends on the order it visits
#: nodes in and changed from run to run (about 1 conversion in 10 under pytest): the ``Squeeze``
#: then has no consumer, is pruned, and the model returns ``[1, N, H, W, 1]``. Without this
#: optimiser the reshapes keep their ``Shape`` + ``Gather`` shapes, a negligible cost.
DISABLED_OPTIMIZERS = ("reshape_optimizer",)
_OPTIMIZER_LOCK = threading.Lock()


@contextlib.contextmanager
def _tf2onnx_optimizers_without(names):
    """tf2onnx's optimiser table (``tf2onnx.optimizer._optimizers``) without ``names``, restored after."""
    import tf2onnx.optimizer as optimizer

    with _OPTIMIZER_LOCK:
        table = optimizer._optimizers
        optimizer._optimizers = type(table)((key, value) for key, value in table.items() if key not in names)
        try:
            yield
        finally:
            optimizer._optimizers = table


def convert_to_onnx(model, opset: int = DEFAULT_OPSET):
    """The ONNX ``ModelProto`` of `enhance_function` (not written anywhere).

    Raises `OnnxUnavailableError` when the tools are missing or the graph does not convert
    (an op without handler, an invalid graph), with tf2onnx's reason.
    """
    tf2onnx, _ = require_onnx_tools()
    import onnx

    function = enhance_function(model)
    quiet = logging.getLogger("tf2onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with _tf2onnx_optimizers_without(DISABLED_OPTIMIZERS):
            proto, _ = tf2onnx.convert.from_function(
                function, input_signature=function.input_signature, opset=opset,
                custom_op_handlers=CUSTOM_OP_HANDLERS,
            )
    except Exception as error:  # tf2onnx raises bare Exceptions and ValueErrors alike
        raise OnnxUnavailableError(
            f"tf2onnx {tf2onnx.__version__} could not convert the generator: {type(error).__name__}: {error}"
        ) from error
    finally:
        quiet.setLevel(level)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as error:  # onnx.checker.ValidationError, shape inference errors
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OnnxUnavailableError(
            f"tf2onnx {tf2onnx.__version__} produced an invalid ONNX graph (opset {opset}): {first_line}"
        ) from error
    _check_output_shape(proto, model)
    return proto


def _check_output_shape(proto, model) -> None:
    """The graph's declared output must be ``[N, H, W, C]`` with C fixed (catches layout bugs early)."""
    from ssp_keras.inference.compiled import model_channels

    (output,) = [value for value in proto.graph.output if value.name == OUTPUT_ENHANCED] or [None]
    dims = output.type.tensor_type.shape.dim if output is not None else []
    declared = [dim.dim_value if dim.HasField("dim_value") else None for dim in dims]
    channels = model_channels(model)
    if len(declared) != 4 or declared[3] != channels or any(d is not None for d in declared[:3]):
        shown = ["?" if d is None else d for d in declared]
        raise OnnxUnavailableError(
            f"the converted ONNX graph declares output '{OUTPUT_ENHANCED}' as {shown}, "
            f"not [N, H, W, {channels}]; not written"
        )


def _tolerance(model) -> float:
    policy = getattr(model, "dtype_policy", None)
    compute = getattr(policy, "compute_dtype", "float32")
    return TOLERANCE_FLOAT32 if compute == "float32" else TOLERANCE_REDUCED


def onnx_session(path_or_bytes, providers=None):
    """An onnxruntime ``InferenceSession`` (CPU unless ``providers`` says otherwise)."""
    _, onnxruntime = require_onnx_tools()
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(path_or_bytes, sess_options=options,
                                        providers=providers or ["CPUExecutionProvider"])


def check_against_keras(model, session, shape=CHECK_SHAPE, seed: int = 0) -> float:
    """max |onnxruntime - Keras| (both padded and cropped as `enhance_tensor` does) on a random
    float32 image of ``[N, H, W]`` = ``shape``, C = the model's channels."""
    import numpy as np

    from ssp_keras.inference.compiled import enhance_tensor, model_channels

    images = np.random.default_rng(seed).random((*shape, model_channels(model)), dtype=np.float32)
    expected = enhance_tensor(model, images).numpy()
    (enhanced,) = session.run([OUTPUT_ENHANCED], {INPUT_IMAGES: images})
    if enhanced.shape != expected.shape:
        raise OnnxUnavailableError(f"the ONNX model returned shape {enhanced.shape} for {expected.shape}")
    return float(np.max(np.abs(enhanced - expected)))


def export_onnx(
    model,
    base_dir: str,
    name: str = "ssp_net",
    version: Optional[int] = None,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
) -> ExportOnnxResult:
    """Writes ``model`` as ``<base_dir>/<name>/<version>/model.onnx`` atomically (module doc).

    model: a generator, or what ``--model`` accepts (run folder, ``.keras`` file, pretrained name).
    version: a positive integer, or None for the next free one. check: compare onnxruntime with
      Keras on a 37x53 image first (recommended; a few seconds).
    Raises `InputError` for a bad name or version or an existing version, `OnnxUnavailableError`
    (an `InputError`) when tf2onnx/onnxruntime are missing or the conversion or check fails.
    """
    from ssp_keras.serving.export import as_generator, publish_version, resolve_version_path

    require_onnx_tools()  # before loading anything: the cheap, likely failures first
    resolve_version_path(base_dir, name, version)  # (checked again when the version is written)
    model = as_generator(model)

    proto = convert_to_onnx(model, opset=opset)
    data = proto.SerializeToString()
    difference = None
    if check:
        difference = check_against_keras(model, onnx_session(data))
        tolerance = _tolerance(model)
        if not difference <= tolerance:
            raise OnnxUnavailableError(
                f"the converted ONNX model differs from Keras by {difference:.3g} (> {tolerance:g}) on a "
                f"{CHECK_SHAPE[1]}x{CHECK_SHAPE[2]} image; not written"
            )

    def write_into(staging):
        with open(os.path.join(staging, ONNX_FILE), "wb") as stream:
            stream.write(data)

    published = publish_version(base_dir, name, version, write_into, "ssp-net export --format onnx")
    return ExportOnnxResult(os.path.join(published.path, ONNX_FILE), name, published.version, opset, difference)
