"""TensorFlow kernels of the layers in `ssp_keras.networks.layers`: the fast path on the TensorFlow backend.

Each layer there computes with ``keras.ops`` on every backend; on TensorFlow it calls the function
here instead where one was measured to be faster on CPU (``benchmarks/RESULTS.md``,
``benchmarks/kernels.py``). Same values and gradients up to float32 rounding: the tests hold each
kernel to the layer's ``keras.ops`` path (tests/test_fused_kernels.py).

This module imports TensorFlow; the layers import it only when ``keras.backend.backend()`` is
``"tensorflow"``, so the networks load on JAX without TensorFlow installed.
"""

from __future__ import annotations

import tensorflow as tf

#: See `fusable`; measured in benchmarks/RESULTS.md (bfloat16 on an AVX-512 BF16 CPU).
HALF_PRECISION_CHANNEL_MULTIPLE = 16


# ------------------------------------------------------------------------------ batch norm
def fused_batch_norm_training(layer, inputs):
    """Training-mode batch norm of ``[N, H, W, C]`` for a ``keras.layers.BatchNormalization`` ``layer``
    with TensorFlow's ``FusedBatchNormV3`` (one kernel forward, one backward), updating its moving
    statistics as the Keras layer does (momentum, biased batch variance). Output in the layer's compute dtype."""
    x = tf.cast(inputs, tf.float32)  # computed in float32, as the Keras layer does
    channels = x.shape[-1]
    gamma = tf.cast(layer.gamma, tf.float32) if layer.scale else tf.ones([channels], tf.float32)
    beta = tf.cast(layer.beta, tf.float32) if layer.center else tf.zeros([channels], tf.float32)
    outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
        x, gamma, beta, epsilon=layer.epsilon, data_format="NHWC", is_training=True
    )[:3]
    # The fused op returns the Bessel-corrected batch variance; Keras tracks the biased one.
    count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
    variance = variance * (tf.maximum(count - 1.0, 1.0) / count)
    momentum = float(layer.momentum)
    layer.moving_mean.assign(
        tf.cast(layer.moving_mean, tf.float32) * momentum + tf.stop_gradient(mean) * (1.0 - momentum)
    )
    layer.moving_variance.assign(
        tf.cast(layer.moving_variance, tf.float32) * momentum + tf.stop_gradient(variance) * (1.0 - momentum)
    )
    return tf.cast(outputs, layer.compute_dtype)


def synchronized_moments(x, axes):
    """Mean and variance of ``x`` over ``axes`` and over all replicas of the current replica context.

    Keras 3.15's synchronised moments all-reduce sum(x) and sum(x^2) and take E[x^2] - E[x]^2 in
    float32; the cancellation makes the statistics (and, far more, the gradients) differ from the
    single-replica ones by up to a few percent. Here the mean is all-reduced first and the variance
    is then the all-reduced sum of (x - mean)^2, as ``tf.nn.moments`` computes it on one replica.
    Outside a multi-replica context it is exactly ``tf.nn.moments``.
    """
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


# ------------------------------------------------------------------------------ convolution
def gpu_visible() -> bool:
    """Whether TensorFlow sees a GPU (where cuDNN's own convolution algorithms apply)."""
    return bool(tf.config.list_logical_devices("GPU"))


def conv2d_with_column_kernel_gradient(inputs, kernel, padding: str):
    """``tf.nn.conv2d(inputs, kernel, 1, padding)`` with the kernel gradient as one matmul.

    The kernel gradient of a stride-1 k x k convolution is
    ``x^T [N*H*W, C_in] @ im2col(dy) [N*H*W, k*k*C_out]``, where ``im2col(dy)`` stacks the k*k
    shifted copies of the output gradient: with ``C_in >= 4 C_out`` that copy is small and the
    product well shaped, while ``Conv2DBackpropFilter`` runs these shapes at about half the
    machine's matmul rate on CPU (`ssp_keras.networks.layers.WideInputConv2D`). The input gradient
    is TensorFlow's own. A "same" convolution is a "valid" one of the zero-padded input, so only
    "valid" is implemented.
    """
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
            return dx, kernel_gradient_from_output_columns(x, dy, w.shape)

        return tf.nn.conv2d(x, w, strides=1, padding="VALID"), gradient

    return convolve(inputs, kernel)


def kernel_gradient_from_output_columns(x, dy, kernel_shape):
    """dL/dW of a stride-1 "valid" convolution: ``x^T @ [dy shifted by each kernel offset]``.

    y[n, h, w, o] = sum_{i, j, c} x[n, h + i, w + j, c] W[i, j, c, o], so
    dW[i, j, c, o] = sum_{n, h', w'} x[n, h', w', c] dy[n, h' - i, w' - j, o] (dy zero outside).
    """
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


# ------------------------------------------------------------------------------ instance norm
def normalise(x, mean, variance, gamma, beta, epsilon: float):
    """``gamma * (x - mean) / sqrt(variance + epsilon) + beta``, as one scale and one offset."""
    scale = tf.math.rsqrt(variance + epsilon) * gamma
    return x * scale + (beta - mean * scale)


def fusable(x) -> bool:
    """Whether `instance_norm` can use its fused kernel on ``x`` as it is: static batch and
    channel sizes and, for bfloat16/float16, N*C a multiple of 16 (oneDNN's bfloat16 batch norm is
    2-3x faster than float32 there, but 6-10x slower for other channel counts, e.g. 8 or 24)."""
    count, channels = x.shape[0], x.shape[-1]
    if count is None or channels is None:
        return False
    return x.dtype == "float32" or (count * channels) % HALF_PRECISION_CHANNEL_MULTIPLE == 0


def instance_norm(x, gamma, beta, epsilon: float):
    """Instance normalisation of ``[N, H, W, C]`` with TensorFlow's fused kernel where it applies.

    x: float32, or bfloat16/float16: fed to the kernel as it is when `fusable` (the kernel keeps its
    statistics in float32 and returns x's dtype; two casts per layer were ~20% of a mixed_bfloat16
    forward pass on CPU), else normalised in float32. gamma, beta: float32 ``[C]``.

    Instance norm of one image is batch norm of a batch of one, so ``FusedBatchNormV3`` computes it,
    forward and backward, in one op each instead of the dozen element-wise passes of
    `tf.nn.moments` and its gradient: 1.35-1.5x faster per layer on CPU (benchmarks/RESULTS.md),
    same values to float32 rounding (tested against the layer's ``keras.ops`` path). In float32 a
    batch is split into its images along axis 0 (views, no copy), normalised one by one and
    concatenated: 1.1-2x faster forward + backward than viewing it as one image of N*C channels
    (two transposes). Half precision keeps that view, which is faster there in the training step
    and gives oneDNN's bfloat16 kernel the channel count it needs.
    """
    if not fusable(x):
        x = tf.cast(x, tf.float32)
    count, _, _, channels = x.shape
    if count is None or channels is None:  # shape-generic graphs (serving signatures)
        return normalise(x, *tf.nn.moments(x, axes=[1, 2], keepdims=True), gamma, beta, epsilon)
    if count == 1:
        return fused_batch_norm(x, gamma, beta, epsilon)
    if x.dtype == tf.float32:
        return tf.concat([fused_batch_norm(image, gamma, beta, epsilon) for image in tf.split(x, count, axis=0)], 0)
    return instance_norm_as_one_image(x, gamma, beta, epsilon)


def fused_batch_norm(images, scale, offset, epsilon: float):
    """Training-mode ``FusedBatchNormV3`` of ``[N, H, W, C]`` (statistics over N, H and W)."""
    return tf.compat.v1.nn.fused_batch_norm(images, scale, offset, epsilon=epsilon, data_format="NHWC", is_training=True)[0]


def instance_norm_as_one_image(x, gamma, beta, epsilon: float):
    """Instance norm of a static-shaped batch as ONE batch norm of it seen as a ``[1, H, W, N*C]`` image.

    Two transposes around one kernel: the half-precision path of `instance_norm` (and, in float32,
    the formulation it replaced, which benchmarks/kernel_ablation.py measures it against).
    """
    count, _, _, channels = x.shape
    height, width = tf.shape(x)[1], tf.shape(x)[2]
    as_channels = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, height, width, count * channels])
    outputs = fused_batch_norm(as_channels, tf.tile(gamma, [count]), tf.tile(beta, [count]), epsilon)
    return tf.transpose(tf.reshape(outputs, [height, width, count, channels]), [2, 0, 1, 3])


# ------------------------------------------------------------------------------ padding, resizing
def symmetric_pad(x, pad: int):
    """``tf.pad(x, ..., mode="SYMMETRIC")`` on height and width, with the same values and gradient.

    Forward, the mirrored edges are sliced, reversed and concatenated: 1.2-1.6x faster than
    TensorFlow's MirrorPad kernel in float32 and 1.6-2.6x in bfloat16 on CPU
    (``benchmarks/kernels.py``), where one pad per convolution made it the largest
    non-convolution op of inference. Backward, autodiff through the slices would be 2x slower,
    so the gradient is TensorFlow's own ``MirrorPadGrad``.
    """
    paddings = [[0, 0], [pad, pad], [pad, pad], [0, 0]]

    @tf.custom_gradient
    def pad_symmetrically(x):
        x = tf.concat([tf.reverse(x[:, :pad], [1]), x, tf.reverse(x[:, -pad:], [1])], axis=1)
        x = tf.concat([tf.reverse(x[:, :, :pad], [2]), x, tf.reverse(x[:, :, -pad:], [2])], axis=2)

        def gradient(upstream):
            return tf.raw_ops.MirrorPadGrad(input=upstream, paddings=paddings, mode="SYMMETRIC")

        return x, gradient

    return pad_symmetrically(x)


def bilinear_upsampling_x2(images):
    """x2 bilinear resize of ``[N, H, W, C]`` in float32, also with H and W unknown at trace time
    (serving signatures take any image size; Keras 3.15's resize checks the size in Python)."""
    height, width = images.shape[1], images.shape[2]
    if height is not None and width is not None:
        size = (2 * height, 2 * width)  # static, so shapes downstream stay known (losses need it)
    else:
        size = tf.shape(images)[1:3] * 2
    return tf.image.resize(tf.cast(images, tf.float32), size, method="bilinear")
