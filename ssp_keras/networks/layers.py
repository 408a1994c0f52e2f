"""Building blocks shared by the generator and the discriminator."""

from __future__ import annotations

import keras


def normalization(kind: str, synchronized: bool = False, name: str | None = None) -> keras.layers.Layer:
    """The normalisation layer named by ``kind``.

    ``batch``: batch normalisation (ResNet's); ``synchronized`` makes its statistics global across
    replicas, so a step on N replicas equals a step on one with the same global batch.
    ``instance``: per-sample, per-channel normalisation (GroupNormalization with one group per
    channel); it does not depend on the batch at all.
    ``none``: identity.
    """
    if kind == "batch":
        if synchronized:
            return SyncBatchNormalization(momentum=0.9, epsilon=1e-5, name=name)
        return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)
    if kind == "instance":
        return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)
    if kind == "none":
        return keras.layers.Identity(name=name)
    raise ValueError(f"unknown normalization {kind!r}; choose 'batch', 'instance' or 'none'")


def conv_norm_act(
    x,
    filters: int,
    kernel_size: int,
    strides: int,
    norm: str,
    synchronized: bool,
    name: str,
    activation: str | None = "relu",
):
    """Conv (no bias when a normalisation follows) -> normalisation -> activation."""
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=norm == "none",
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    x = normalization(norm, synchronized, name=f"{name}_norm")(x)
    if activation is not None:
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


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
