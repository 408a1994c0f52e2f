"""Building blocks shared by the generator and the discriminator."""

from __future__ import annotations

import contextlib
import contextvars

import keras

NORMALIZATIONS = ("instance", "batch", "none")
PADDINGS = ("mirror", "zero")


@keras.saving.register_keras_serializable(package="ssp_keras")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training-mode forward and backward are single fused ops.

    Keras 3 builds training-mode batch norm from a dozen element-wise ops and reductions
    (``tf.nn.moments``, ``tf.nn.batch_normalization``) and differentiates them op by op; on the
    TensorFlow backend this layer calls ``FusedBatchNormV3`` instead (one kernel forward, one
    backward). Same variables, same outputs and gradients up to float32 rounding, same
    moving-statistics update (momentum, biased batch variance) as the Keras layer. Inference, masks, renorm, other axes and other backends take
    the Keras path unchanged. Measured in ``benchmarks/RESULTS.md``.
    """

    def call(self, inputs, training=None, mask=None):
        if not self._fused_applies(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = tf.cast(inputs, tf.float32)  # computed in float32, as the Keras layer does
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels], tf.float32)
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels], tf.float32)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True
        )[:3]
        # The fused op returns the Bessel-corrected batch variance; Keras tracks the biased one.
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
        variance = variance * (tf.maximum(count - 1.0, 1.0) / count)
        momentum = float(self.momentum)
        self.moving_mean.assign(
            tf.cast(self.moving_mean, tf.float32) * momentum + tf.stop_gradient(mean) * (1.0 - momentum)
        )
        self.moving_variance.assign(
            tf.cast(self.moving_variance, tf.float32) * momentum + tf.stop_gradient(variance) * (1.0 - momentum)
        )
        return tf.cast(outputs, self.compute_dtype)

    def _fused_applies(self, inputs, training, mask) -> bool:
        return (
            bool(training)
            and self.trainable
            and mask is None
            and not self.synchronized
            and not self.renorm
            and keras.backend.backend() == "tensorflow"
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
        )


@keras.saving.register_keras_serializable(package="ssp_keras")
class WideInputConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` for many input and few output channels, with a faster kernel gradient on CPU.

    The forward pass and the input gradient are TensorFlow's own. The kernel gradient of a
    stride-1 k x k convolution is computed as ONE matrix product,
    ``x^T [N*H*W, C_in] @ im2col(dy) [N*H*W, k*k*C_out]``, where ``im2col(dy)`` stacks the k*k
    shifted copies of the output gradient. With ``C_in >= 4 C_out`` (the decoder's first
    convolution of every stage, which reads the upsampled features concatenated with the skip)
    that copy is small and the product is well shaped, while ``Conv2DBackpropFilter`` runs these
    shapes at about half the machine's matmul rate on CPU; measured in ``benchmarks/RESULTS.md``.
    Same variables and results up to float32 rounding. Used only in training mode, on the
    TensorFlow backend, without GPUs (cuDNN has its own algorithms), for stride 1, dilation 1,
    ``padding="same"`` or ``"valid"``, odd square kernels, channels-last; everything else is
    exactly ``Conv2D``.
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
        return _conv2d_with_column_kernel_gradient(inputs, kernel, self.padding)

    def _column_gradient_applies(self, inputs) -> bool:
        if keras.backend.backend() != "tensorflow" or len(inputs.shape) != 4:
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
        import tensorflow as tf

        return not tf.config.list_logical_devices("GPU")


def _conv2d_with_column_kernel_gradient(inputs, kernel, padding: str):
    """``tf.nn.conv2d(inputs, kernel, 1, padding)`` with the kernel gradient as one matmul (see `WideInputConv2D`).

    A "same" convolution is a "valid" one of the zero-padded input, so only "valid" is implemented.
    """
    import tensorflow as tf

    kernel = tf.convert_to_tensor(kernel)
    if padding == "same":
        pad = kernel.shape[0] // 2
        inputs = tf.pad(inputs, [[0, 0], [pad, pad], [pad, pad], [0, 0]])

    @tf.custom_gradient
    def convolve(x, w):
        def gradient(dy):
            dx = tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x), filter=w, out_backprop=dy, strides=[1, 1, 1, 1], padding="VALID"
            )
            return dx, _kernel_gradient_from_output_columns(x, dy, w.shape)

        return tf.nn.conv2d(x, w, strides=1, padding="VALID"), gradient

    return convolve(inputs, kernel)


def _kernel_gradient_from_output_columns(x, dy, kernel_shape):
    """dL/dW of a stride-1 "valid" convolution: ``x^T @ [dy shifted by each kernel offset]``.

    y[n, h, w, o] = sum_{i, j, c} x[n, h + i, w + j, c] W[i, j, c, o], so
    dW[i, j, c, o] = sum_{n, h', w'} x[n, h', w', c] dy[n, h' - i, w' - j, o] (dy zero outside).
    """
    import tensorflow as tf

    size, _, in_channels, out_channels = kernel_shape
    margin = size - 1
    height, width = tf.shape(x)[1], tf.shape(x)[2]
    padded = tf.pad(dy, [[0, 0], [margin, margin], [margin, margin], [0, 0]])
    columns = tf.concat(
        [
            padded[:, margin - i : margin - i + height, margin - j : margin - j + width, :]
            for i in range(size)
            for j in range(size)
        ],
        axis=-1,
    )  # [N, H', W', k*k*C_out], ordered (i, j, o)
    product = tf.matmul(
        tf.reshape(x, [-1, in_channels]), tf.reshape(columns, [-1, size * size * out_channels]), transpose_a=True
    )  # [C_in, k*k*C_out]
    return tf.transpose(tf.reshape(product, [in_channels, size, size, out_channels]), [1, 2, 0, 3])


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
    ``keras.layers.GroupNormalization(groups=-1)`` (tested), in fewer ops.
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
        import tensorflow as tf

        gamma, beta = tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32)
        scope = _STATISTICS_SCOPE.get()
        if scope is None and _fusable(inputs):
            # bfloat16/float16 input goes into the fused kernel as it is: FusedBatchNormV3 keeps its
            # statistics in float32 (its U type) itself, and two casts per layer were ~20% of a
            # mixed_bfloat16 forward pass on CPU (benchmarks/RESULTS.md).
            return tf.cast(_instance_norm(inputs, gamma, beta, self.epsilon), self.compute_dtype)
        x = tf.cast(inputs, tf.float32)
        if scope is not None and scope[0] == "fixed":
            outputs = _normalise(x, *scope[1][self.name], gamma, beta, self.epsilon)
        else:
            outputs = _instance_norm(x, gamma, beta, self.epsilon)
            if scope is not None:  # recording for tiled inference: the (biased) statistics used above
                scope[1][self.name] = tf.nn.moments(x, axes=[1, 2], keepdims=True)
        return tf.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def _normalise(x, mean, variance, gamma, beta, epsilon: float):
    """``gamma * (x - mean) / sqrt(variance + epsilon) + beta``, as one scale and one offset."""
    import tensorflow as tf

    scale = tf.math.rsqrt(variance + epsilon) * gamma
    return x * scale + (beta - mean * scale)


def _fusable(x) -> bool:
    """Whether `_instance_norm` can use its fused kernel on ``x`` as it is: static batch and
    channel sizes and, for bfloat16/float16, N*C a multiple of 16 (oneDNN's bfloat16 batch norm is
    2-3x faster than float32 there, but 6-10x slower for other channel counts, e.g. 8 or 24)."""
    count, channels = x.shape[0], x.shape[-1]
    if count is None or channels is None:
        return False
    return x.dtype == "float32" or (count * channels) % _HALF_PRECISION_CHANNEL_MULTIPLE == 0


#: See `_fusable`; measured in benchmarks/RESULTS.md (bfloat16 on an AVX-512 BF16 CPU).
_HALF_PRECISION_CHANNEL_MULTIPLE = 16


def _instance_norm(x, gamma, beta, epsilon: float):
    """Instance normalisation of ``[N, H, W, C]`` with TensorFlow's fused kernel, when N and C are static.

    x: float32, or bfloat16/float16 (the kernel computes its statistics in float32 and returns
    x's dtype); gamma, beta: float32 ``[C]``.

    Instance norm of one image is batch norm of a batch of one, so ``FusedBatchNormV3`` computes it,
    forward and backward, in one op each instead of the dozen element-wise passes of
    `tf.nn.moments` and its gradient: 1.35-1.5x faster per layer on CPU (benchmarks/RESULTS.md),
    same values to float32 rounding (tested against Keras' GroupNormalization). In float32 a batch
    is split into its images along axis 0 (views, no copy), normalised one by one and
    concatenated: 1.1-2x faster forward + backward than viewing it as one image of N*C channels
    (two transposes). Half precision keeps that view, which is faster there in the training step
    and gives oneDNN's bfloat16 kernel the channel count it needs (see `_fusable`).
    """
    import tensorflow as tf

    count, _, _, channels = x.shape
    if count is None or channels is None:  # shape-generic graphs (serving signatures)
        x = tf.cast(x, tf.float32)
        return _normalise(x, *tf.nn.moments(x, axes=[1, 2], keepdims=True), gamma, beta, epsilon)

    if count == 1:
        return _fused_batch_norm(x, gamma, beta, epsilon)
    if x.dtype == tf.float32:
        return tf.concat([_fused_batch_norm(image, gamma, beta, epsilon) for image in tf.split(x, count, axis=0)], 0)
    return _instance_norm_as_one_image(x, gamma, beta, epsilon)


def _fused_batch_norm(images, scale, offset, epsilon: float):
    """Training-mode ``FusedBatchNormV3`` of ``[N, H, W, C]`` (statistics over N, H and W)."""
    import tensorflow as tf

    return tf.compat.v1.nn.fused_batch_norm(images, scale, offset, epsilon=epsilon, data_format="NHWC", is_training=True)[0]


def _instance_norm_as_one_image(x, gamma, beta, epsilon: float):
    """Instance norm of a static-shaped batch as ONE batch norm of it seen as a ``[1, H, W, N*C]`` image.

    Two transposes around one kernel: the half-precision path of `_instance_norm` (and, in float32,
    the formulation it replaced, which benchmarks/kernel_ablation.py measures it against).
    """
    import tensorflow as tf

    count, _, _, channels = x.shape
    height, width = tf.shape(x)[1], tf.shape(x)[2]
    as_channels = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, height, width, count * channels])
    outputs = _fused_batch_norm(as_channels, tf.tile(gamma, [count]), tf.tile(beta, [count]), epsilon)
    return tf.transpose(tf.reshape(outputs, [height, width, count, channels]), [2, 0, 1, 3])


@keras.saving.register_keras_serializable(package="ssp_keras")
class MirrorPadding2D(keras.layers.Layer):
    """Pads height and width by ``pad`` pixels on every side with their mirror image (``cba|abcd|dcb``).

    Symmetric on all four sides, so a following "valid" convolution sees no zero border to learn
    a band from, and a stride-2 convolution samples the same grid as its 1x1 shortcut. The edge
    pixel is repeated ("symmetric" mode), which works down to 1-pixel inputs (a 32-pixel image's
    bottleneck), where mirroring without repetition cannot.
    """

    def __init__(self, pad: int, **kwargs):
        super().__init__(**kwargs)
        self.pad = int(pad)

    def call(self, inputs):
        return _symmetric_pad(inputs, self.pad)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = lambda size: None if size is None else size + 2 * self.pad  # noqa: E731
        return (batch, grow(height), grow(width), channels)

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


def _symmetric_pad(x, pad: int):
    """``tf.pad(x, ..., mode="SYMMETRIC")`` on height and width, with the same values and gradient.

    Forward, the mirrored edges are sliced, reversed and concatenated: 1.2-1.6x faster than
    TensorFlow's MirrorPad kernel in float32 and 1.6-2.6x in bfloat16 on CPU
    (``benchmarks/kernels.py``), where one pad per convolution made it the largest
    non-convolution op of inference. Backward, autodiff through the slices would be 2x slower,
    so the gradient is TensorFlow's own ``MirrorPadGrad``. Like ``tf.pad``, needs ``pad`` <= the
    height and width (checked when they are static).
    """
    import tensorflow as tf

    for side in x.shape[1:3]:
        if side is not None and side < pad:
            raise ValueError(f"symmetric padding by {pad} needs height and width >= {pad}, got {tuple(x.shape)}")
    paddings = [[0, 0], [pad, pad], [pad, pad], [0, 0]]

    @tf.custom_gradient
    def symmetric_pad(x):
        x = tf.concat([tf.reverse(x[:, :pad], [1]), x, tf.reverse(x[:, -pad:], [1])], axis=1)
        x = tf.concat([tf.reverse(x[:, :, :pad], [2]), x, tf.reverse(x[:, :, -pad:], [2])], axis=2)

        def gradient(upstream):
            return tf.raw_ops.MirrorPadGrad(input=upstream, paddings=paddings, mode="SYMMETRIC")

        return x, gradient

    return symmetric_pad(x)


def normalization(kind: str, synchronized: bool = False, fused: bool = True, name: str | None = None) -> keras.layers.Layer:
    """The normalisation layer named by ``kind``.

    ``instance``: `InstanceNormalization`, per sample and channel; it does not depend on the batch.
    ``batch``: batch normalisation (ResNet's); ``synchronized`` makes its statistics global across
    replicas, so a step on N replicas equals a step on one with the same global batch; ``fused``
    picks `FusedBatchNormalization` (one fused kernel) over Keras' own layer.
    ``none``: identity.
    """
    if kind == "instance":
        return InstanceNormalization(epsilon=1e-5, name=name)
    if kind == "batch":
        if synchronized:
            return SyncBatchNormalization(momentum=0.9, epsilon=1e-5, name=name)
        layer_class = FusedBatchNormalization if fused else keras.layers.BatchNormalization
        return layer_class(momentum=0.9, epsilon=1e-5, name=name)
    if kind == "none":
        return keras.layers.Identity(name=name)
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
):
    """[mirror padding] -> conv (no bias when a normalisation follows) -> normalisation -> activation.

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
            x = MirrorPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
    x = (WideInputConv2D if wide else keras.layers.Conv2D)(
        filters,
        kernel_size,
        strides=strides,
        padding=conv_padding,
        use_bias=norm == "none",
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    x = normalization(norm, synchronized, fused, name=f"{name}_norm")(x)
    if activation is not None:
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
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
        import tensorflow as tf

        images, correction = (tf.cast(value, tf.float32) for value in inputs)
        images = tf.clip_by_value(images, self.margin, 1.0 - self.margin)
        return tf.sigmoid(tf.math.log(images) - tf.math.log1p(-images) + correction)

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="ssp_keras")
class BilinearUpsampling2D(keras.layers.Layer):
    """x2 bilinear upsampling of ``[N, H, W, C]`` that also traces with unknown H and W.

    Keras 3.15's ``UpSampling2D(interpolation="bilinear")`` checks the target size in Python, which
    fails when H and W are symbolic (serving signatures and shape-generic inference functions take
    any image size); this layer computes the size from ``tf.shape`` instead. Same
    ``tf.image.resize`` call, same result.
    """

    def call(self, images):
        import tensorflow as tf

        height, width = images.shape[1], images.shape[2]
        if height is not None and width is not None:
            size = (2 * height, 2 * width)  # static, so shapes downstream stay known (losses need it)
        else:
            size = tf.shape(images)[1:3] * 2
        # Resized in float32 (what ResizeBilinear computes in anyway): XLA's gradient of a bfloat16
        # or float16 resize comes back as float32 and fails to compile under mixed precision.
        return tf.cast(tf.image.resize(tf.cast(images, tf.float32), size, method="bilinear"), images.dtype)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, None if height is None else 2 * height, None if width is None else 2 * width, channels)


@keras.saving.register_keras_serializable(package="ssp_keras")
class SyncBatchNormalization(keras.layers.BatchNormalization):
    """``BatchNormalization(synchronized=True)`` with numerically stable cross-replica statistics.

    Keras 3.15's synchronised moments all-reduce sum(x) and sum(x^2) and take E[x^2] - E[x]^2 in
    float32; the cancellation makes the statistics (and, far more, the gradients) differ from the
    single-replica ones by up to a few percent on this generator. Here the mean is all-reduced first
    and the variance is then the all-reduced sum of (x - mean)^2, as ``tf.nn.moments`` computes it
    on one replica. Outside a multi-replica context it is exactly ``tf.nn.moments``.
    """

    def __init__(self, **kwargs):
        kwargs["synchronized"] = True
        super().__init__(**kwargs)

    def _moments(self, inputs, mask):
        if mask is not None:
            return super()._moments(inputs, mask)
        return synchronized_moments(inputs, self._reduction_axes)


def synchronized_moments(x, axes):
    """Mean and variance of ``x`` over ``axes`` and over all replicas of the current replica context."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tf.nn.moments(x, axes)
    local_sum = tf.reduce_sum(x, axis=axes, keepdims=True)
    local_count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(x), axes)), x.dtype)
    total, count = context.all_reduce(tf.distribute.ReduceOp.SUM, [local_sum, local_count])
    mean = total / count
    # d(variance)/d(mean) is 0, so, as in tf.nn.moments, the mean is a constant here.
    squares = tf.reduce_sum(tf.math.squared_difference(x, tf.stop_gradient(mean)), axis=axes, keepdims=True)
    variance = context.all_reduce(tf.distribute.ReduceOp.SUM, squares) / count
    return tf.squeeze(mean, axes), tf.squeeze(variance, axes)


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
