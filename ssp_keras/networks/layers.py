"""Building blocks shared by the generator and the discriminator, written with ``keras.ops``.

Every layer here runs on each Keras backend (TensorFlow, JAX). Where a TensorFlow kernel was
measured to be faster on CPU (fused instance and batch norm, mirror padding with TensorFlow's own
``MirrorPadGrad``, the wide-input convolution's kernel gradient), the layer calls it on the
TensorFlow backend instead: one layer, two kernels, the same values and gradients
(tests/test_fused_kernels.py). Those kernels live in `ssp_keras.networks.tf_kernels`, imported only
on the TensorFlow backend.
"""

from __future__ import annotations

import contextlib
import contextvars

import keras
from keras import ops

from ssp_keras.defaults import NORMALIZATIONS, PADDINGS  # noqa: F401  (importable from here as before)


def _on_tensorflow() -> bool:
    """Whether the TensorFlow kernels (`ssp_keras.networks.tf_kernels`) apply: the TensorFlow backend."""
    return keras.backend.backend() == "tensorflow"


@keras.saving.register_keras_serializable(package="ssp_keras")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training-mode forward and backward are single fused ops on TensorFlow.

    Keras 3 builds training-mode batch norm from a dozen element-wise ops and reductions
    (``tf.nn.moments``, ``tf.nn.batch_normalization``) and differentiates them op by op; on the
    TensorFlow backend this layer calls ``FusedBatchNormV3`` instead (one kernel forward, one
    backward; `tf_kernels.fused_batch_norm_training`). Same variables, same outputs and gradients
    up to float32 rounding, same moving-statistics update (momentum, biased batch variance) as the
    Keras layer. Inference, masks, renorm, other axes and other backends take the Keras path
    unchanged. Measured in ``benchmarks/RESULTS.md``.
    """

    def call(self, inputs, training=None, mask=None):
        if not self._fused_applies(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        from ssp_keras.networks import tf_kernels

        return tf_kernels.fused_batch_norm_training(self, inputs)

    def _fused_applies(self, inputs, training, mask) -> bool:
        return (
            bool(training)
            and self.trainable
            and mask is None
            and not self.synchronized
            and not self.renorm
            and _on_tensorflow()
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
        )


@keras.saving.register_keras_serializable(package="ssp_keras")
class WideInputConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` for many input and few output channels, with a faster kernel gradient on CPU.

    The forward pass and the input gradient are the backend's own. On TensorFlow without GPUs the
    kernel gradient of a stride-1 k x k convolution is ONE matrix product
    (`tf_kernels.conv2d_with_column_kernel_gradient`): with ``C_in >= 4 C_out`` (the decoder's first
    convolution of every stage, which reads the upsampled features concatenated with the skip)
    that is well shaped, while ``Conv2DBackpropFilter`` runs these shapes at about half the
    machine's matmul rate on CPU; measured in ``benchmarks/RESULTS.md``. Same variables and results
    up to float32 rounding. Used only in training mode, on the TensorFlow backend, without GPUs
    (cuDNN has its own algorithms), for stride 1, dilation 1, ``padding="same"`` or ``"valid"``, odd
    square kernels, channels-last; everything else is exactly ``Conv2D``.
    """

    _column_gradient = False

    def call(self, inputs, training=None):
        self._column_gradient = bool(training) and self._column_gradient_applies(inputs)
        try:
            return super().call(inputs)
        finally:
            self._column_gradient = False

    def convolution_op(self, inputs, kernel):
        if not self._column_gradient:
            return super().convolution_op(inputs, kernel)
        from ssp_keras.networks import tf_kernels

        return tf_kernels.conv2d_with_column_kernel_gradient(inputs, kernel, self.padding)

    def _column_gradient_applies(self, inputs) -> bool:
        if not _on_tensorflow() or len(inputs.shape) != 4:
            return False
        size = self.kernel_size[0]
        if (
            tuple(self.kernel_size) != (size, size)
            or size % 2 == 0
            or tuple(self.strides) != (1, 1)
            or tuple(self.dilation_rate) != (1, 1)
            or self.padding not in ("same", "valid")
            or self.data_format != "channels_last"
            or self.groups != 1
        ):
            return False
        from ssp_keras.networks import tf_kernels

        return not tf_kernels.gpu_visible()


#: Input channels per output channel from which `conv_norm_act` builds a `WideInputConv2D` by default.
DEFAULT_WIDE_INPUT_RATIO = 4


# ------------------------------------------------------------------------------ instance norm
# Tiled inference of a large image must normalise every tile with the statistics of the whole
# image, or tiles differ in tone and seams show. `recorded_statistics` collects each
# InstanceNormalization's mean and variance during one pass (over the whole image, or a
# downscaled copy of it); `fixed_statistics` makes a later pass use them instead of its own.
# Scoped to a `with` block (a context variable, so threads do not share it); training never uses it.
_STATISTICS_SCOPE = contextvars.ContextVar("ssp_keras_instance_statistics", default=None)


@contextlib.contextmanager
def recorded_statistics():
    """Within the block, every `InstanceNormalization` call stores ``{layer name: (mean, variance)}`` in the yielded dict."""
    values = {}
    token = _STATISTICS_SCOPE.set(("record", values))
    try:
        yield values
    finally:
        _STATISTICS_SCOPE.reset(token)


@contextlib.contextmanager
def fixed_statistics(values):
    """Within the block, `InstanceNormalization` layers use ``values[layer name]`` (from `recorded_statistics`)."""
    token = _STATISTICS_SCOPE.set(("fixed", values))
    try:
        yield
    finally:
        _STATISTICS_SCOPE.reset(token)


@keras.saving.register_keras_serializable(package="ssp_keras")
class InstanceNormalization(keras.layers.Layer):
    """Per-sample, per-channel normalisation over height and width, with a learned scale and offset.

    ``y = gamma * (x - mean_{h,w}(x)) / sqrt(var_{h,w}(x) + epsilon) + beta`` for each sample and
    channel: an image's result never depends on the rest of the batch, and training and inference
    compute the same thing (there are no moving statistics). Input ``[N, H, W, C]``; statistics
    in float32 whatever the dtype policy. Equal to
    ``keras.layers.GroupNormalization(groups=-1)`` (tested), in fewer ops. On TensorFlow, outside
    `recorded_statistics` / `fixed_statistics`, TensorFlow's fused kernel computes it
    (`tf_kernels.instance_norm`, 1.35-1.5x faster per layer on CPU).
    """

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.supports_masking = True

    def build(self, input_shape):
        channels = input_shape[-1]
        self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")

    def call(self, inputs):
        gamma, beta = ops.cast(self.gamma, "float32"), ops.cast(self.beta, "float32")
        scope = _STATISTICS_SCOPE.get()
        if scope is None and _on_tensorflow():
            from ssp_keras.networks import tf_kernels

            return ops.cast(tf_kernels.instance_norm(inputs, gamma, beta, self.epsilon), self.compute_dtype)
        x = ops.cast(inputs, "float32")
        if scope is not None and scope[0] == "fixed":
            mean, variance = scope[1][self.name]
        else:
            mean, variance = ops.moments(x, axes=[1, 2], keepdims=True)
            if scope is not None:  # recording for tiled inference: the (biased) statistics used here
                scope[1][self.name] = (mean, variance)
        return ops.cast(_normalise(x, mean, variance, gamma, beta, self.epsilon), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def _normalise(x, mean, variance, gamma, beta, epsilon: float):
    """``gamma * (x - mean) / sqrt(variance + epsilon) + beta``, as one scale and one offset."""
    scale = ops.rsqrt(variance + epsilon) * gamma
    return x * scale + (beta - mean * scale)


@keras.saving.register_keras_serializable(package="ssp_keras")
class MirrorPadding2D(keras.layers.Layer):
    """Pads height and width by ``pad`` pixels on every side with their mirror image (``cba|abcd|dcb``).

    Symmetric on all four sides, so a following "valid" convolution sees no zero border to learn
    a band from, and a stride-2 convolution samples the same grid as its 1x1 shortcut. The edge
    pixel is repeated ("symmetric" mode), which works down to 1-pixel inputs (a 32-pixel image's
    bottleneck), where mirroring without repetition cannot. Needs ``pad`` <= the height and width
    (checked when they are static). On TensorFlow: `tf_kernels.symmetric_pad` (slices forward,
    ``MirrorPadGrad`` backward; 1.2-2.6x faster than ``MirrorPad`` on CPU).
    """

    def __init__(self, pad: int, **kwargs):
        super().__init__(**kwargs)
        self.pad = int(pad)

    def call(self, inputs):
        for side in inputs.shape[1:3]:
            if side is not None and side < self.pad:
                raise ValueError(f"symmetric padding by {self.pad} needs height and width >= {self.pad}, "
                                 f"got {tuple(inputs.shape)}")
        if _on_tensorflow():
            from ssp_keras.networks import tf_kernels

            return tf_kernels.symmetric_pad(inputs, self.pad)
        pad = self.pad
        return ops.pad(inputs, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="symmetric")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = lambda size: None if size is None else size + 2 * self.pad  # noqa: E731
        return (batch, grow(height), grow(width), channels)

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


def normalization(
    kind: str, synchronized: bool = False, fused: bool = True, name: str | None = None, dtype=None
) -> keras.layers.Layer:
    """The normalisation layer named by ``kind``, with the dtype policy ``dtype`` (None: Keras' global one).

    ``instance``: `InstanceNormalization`, per sample and channel; it does not depend on the batch.
    ``batch``: batch normalisation (ResNet's); ``synchronized`` makes its statistics global across
    replicas, so a step on N replicas equals a step on one with the same global batch; ``fused``
    picks `FusedBatchNormalization` (one fused kernel) over Keras' own layer.
    ``none``: identity.
    """
    if kind == "instance":
        return InstanceNormalization(epsilon=1e-5, name=name, dtype=dtype)
    if kind == "batch":
        if synchronized:
            return SyncBatchNormalization(momentum=0.9, epsilon=1e-5, name=name, dtype=dtype)
        layer_class = FusedBatchNormalization if fused else keras.layers.BatchNormalization
        return layer_class(momentum=0.9, epsilon=1e-5, name=name, dtype=dtype)
    if kind == "none":
        return keras.layers.Identity(name=name, dtype=dtype)
    raise ValueError(f"unknown normalization {kind!r}; choose from {list(NORMALIZATIONS)}")


def conv_norm_act(
    x,
    filters: int,
    kernel_size: int,
    strides: int,
    norm: str,
    name: str,
    activation: str | None = "relu",
    padding: str = "mirror",
    synchronized: bool = False,
    fused: bool = True,
    wide_input_ratio: int = DEFAULT_WIDE_INPUT_RATIO,
    dtype=None,
):
    """[mirror padding] -> conv (no bias when a normalisation follows) -> normalisation -> activation,
    every layer with the dtype policy ``dtype`` (None: Keras' global one).

    padding: ``mirror`` pads (kernel_size - 1) / 2 pixels on every side with `MirrorPadding2D` and
      convolves "valid"; ``zero`` is Keras' "same" (which, at stride 2, pads only bottom and right).
    fused, wide_input_ratio: the CPU kernels (`FusedBatchNormalization`; `WideInputConv2D` for
      stride-1 odd kernels (k >= 3) with at least ``wide_input_ratio`` input channels per output
      channel, 0 = never). Same results either way; benchmarks switch them off to measure them.
    """
    if padding not in PADDINGS:
        raise ValueError(f"unknown padding {padding!r}; choose from {list(PADDINGS)}")
    wide = (
        wide_input_ratio > 0
        and strides == 1
        and kernel_size >= 3
        and kernel_size % 2 == 1
        and x.shape[-1] is not None
        and x.shape[-1] >= wide_input_ratio * filters
    )
    conv_padding = "same"
    if padding == "mirror":
        conv_padding = "valid"
        if kernel_size > 1:
            x = MirrorPadding2D(kernel_size // 2, name=f"{name}_pad", dtype=dtype)(x)
    x = (WideInputConv2D if wide else keras.layers.Conv2D)(
        filters,
        kernel_size,
        strides=strides,
        padding=conv_padding,
        use_bias=norm == "none",
        kernel_initializer="he_normal",
        name=f"{name}_conv",
        dtype=dtype,
    )(x)
    x = normalization(norm, synchronized, fused, name=f"{name}_norm", dtype=dtype)(x)
    if activation is not None:
        x = keras.layers.Activation(activation, name=f"{name}_{activation}", dtype=dtype)(x)
    return x


@keras.saving.register_keras_serializable(package="ssp_keras")
class InputSkip(keras.layers.Layer):
    """``sigmoid(logit(x) + r)``: the generator's output as a correction ``r`` of its input ``x``.

    Called on ``[x, r]``, both ``[N, H, W, C]``, x in [0, 1] (clipped to [1e-3, 1 - 1e-3] before
    the logit, so saturated pixels stay finite). With ``r = 0`` the output is the input, so an
    untrained generator is the identity and training only has to learn the enhancement, which
    keeps fine detail from the first step. Computed in float32; output in (0, 1).
    """

    def __init__(self, margin: float = 1e-3, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.margin = float(margin)

    def call(self, inputs):
        images, correction = (ops.cast(value, "float32") for value in inputs)
        images = ops.clip(images, self.margin, 1.0 - self.margin)
        return ops.sigmoid(ops.log(images) - ops.log1p(-images) + correction)

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="ssp_keras")
class BilinearUpsampling2D(keras.layers.Layer):
    """x2 bilinear upsampling of ``[N, H, W, C]`` that also traces with unknown H and W.

    Keras 3.15's ``UpSampling2D(interpolation="bilinear")`` checks the target size in Python, which
    fails when H and W are symbolic (serving signatures and shape-generic inference functions take
    any image size); on TensorFlow this layer computes the size from ``tf.shape`` instead
    (`tf_kernels.bilinear_upsampling_x2`). Elsewhere it is the fixed two-tap stencil that x2
    bilinear resizing with half-pixel centres is (`_bilinear_x2`): JAX's ``image.resize`` contracts
    with dense ``[2n, n]`` weight matrices instead, which made the ``lite`` step's upsampling most of
    its arithmetic. Resized in float32 (what ResizeBilinear computes in anyway): XLA's gradient of
    a bfloat16 or float16 resize comes back as float32 and fails to compile under mixed precision.
    """

    def call(self, images):
        if _on_tensorflow():
            from ssp_keras.networks import tf_kernels

            return ops.cast(tf_kernels.bilinear_upsampling_x2(images), images.dtype)
        resized = _bilinear_x2(_bilinear_x2(ops.cast(images, "float32"), axis=1), axis=2)
        return ops.cast(resized, images.dtype)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, None if height is None else 2 * height, None if width is None else 2 * width, channels)


def _bilinear_x2(x, axis: int):
    """x2 bilinear upsampling of ``x`` along ``axis`` with half-pixel centres (``tf.image.resize``'s):
    output 2i is 0.75 x[i] + 0.25 x[i - 1], output 2i + 1 is 0.75 x[i] + 0.25 x[i + 1], the edge
    samples repeated."""
    length = x.shape[axis]
    take = lambda start, stop: ops.take(x, ops.arange(start, stop), axis=axis)  # noqa: E731
    previous = ops.concatenate([take(0, 1), take(0, length - 1)], axis=axis)
    following = ops.concatenate([take(1, length), take(length - 1, length)], axis=axis)
    pairs = ops.stack([0.75 * x + 0.25 * previous, 0.75 * x + 0.25 * following], axis=axis + 1)
    shape = list(ops.shape(x))
    shape[axis] = 2 * length
    return ops.reshape(pairs, shape)


@keras.saving.register_keras_serializable(package="ssp_keras")
class SyncBatchNormalization(keras.layers.BatchNormalization):
    """Batch normalisation whose statistics are those of the global batch, across replicas.

    On TensorFlow it is ``BatchNormalization(synchronized=True)`` with numerically stable
    cross-replica statistics (`tf_kernels.synchronized_moments`: Keras 3.15's own take
    E[x^2] - E[x]^2 in float32, whose cancellation made the gradients differ from the
    single-replica ones by up to a few percent on this generator). On JAX the step is one program
    over the global batch (``keras.distribution.DataParallel`` shards it), so Keras' own moments
    are already global and Keras refuses ``synchronized=True`` there. Outside a multi-replica
    context it is exactly batch norm.
    """

    def __init__(self, **kwargs):
        kwargs["synchronized"] = _on_tensorflow()
        super().__init__(**kwargs)

    def _moments(self, inputs, mask):
        if mask is not None or not _on_tensorflow():
            return super()._moments(inputs, mask)
        from ssp_keras.networks import tf_kernels

        return tf_kernels.synchronized_moments(inputs, self._reduction_axes)


# Keras' .keras format files a layer's weights under its class name (saving_lib names each layer of a
# model after ``__class__.__name__``, numbered by occurrence), so subclasses with names of their own
# would move the weights of every such layer in the file. Under Keras' names, generators built with
# any of these classes or with Keras' own (the bundled ccmid-lite, models saved before these classes
# existed, a model trained on several replicas) read each other's weights; the names they are
# registered under (``ssp_keras>FusedBatchNormalization``, ...) keep their configs apart.
for _layer_class, _keras_name in (
    (FusedBatchNormalization, "BatchNormalization"),
    (SyncBatchNormalization, "BatchNormalization"),
    (WideInputConv2D, "Conv2D"),
):
    _layer_class.__name__ = _layer_class.__qualname__ = _keras_name
