"""The library's TensorFlow kernels compute what the layers' ``keras.ops`` kernels compute.

Every layer of `ssp_keras.networks.layers` runs ``keras.ops`` on any backend and, on TensorFlow,
a faster kernel of `ssp_keras.networks.tf_kernels` where one was measured to matter (figures in
benchmarks/RESULTS.md): one layer, two kernels. These tests hold each TensorFlow kernel to the
layer's ``keras.ops`` path (run on TensorFlow by switching the kernels off) and `FusedBatchNormalization`,
`WideInputConv2D` and `FusedAdam` to Keras' own layer / optimiser: same outputs, same gradients,
same moving statistics, same updates, and a `.keras` round trip.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import keras

from ssp_keras.networks import build_generator, layers
from ssp_keras.networks.layers import (
    BilinearUpsampling2D,
    FusedBatchNormalization,
    InstanceNormalization,
    MirrorPadding2D,
    SyncBatchNormalization,
    WideInputConv2D,
    conv_norm_act,
)
from ssp_keras.training.optimizers import FusedAdam
from tiny import tiny_config


def _values_and_gradients(layer, x, training):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        # A non-uniform weighting so the gradient through the normalisation is not trivially zero.
        loss = tf.reduce_sum(y * tf.reshape(tf.range(tf.size(y), dtype=tf.float32), tf.shape(y)) / 100.0)
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    return y, grads


def _assert_same_training_pass(reference, candidate, x, output_atol):
    """Builds both layers, gives `candidate` the weights of `reference`, and compares one training
    pass: outputs, and gradients with respect to the input and every trainable weight."""
    for layer in (reference, candidate):
        if not layer.built:
            layer.build(x.shape)
    candidate.set_weights(reference.get_weights())
    y_reference, g_reference = _values_and_gradients(reference, x, training=True)
    y_candidate, g_candidate = _values_and_gradients(candidate, x, training=True)
    np.testing.assert_allclose(y_candidate, y_reference, atol=output_atol)
    assert len(g_candidate) == len(g_reference)
    for a, b in zip(g_candidate, g_reference):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


# ------------------------------------------------------------------------ TensorFlow kernel vs keras.ops
def _fast_and_generic(monkeypatch, make_layer, x, weights=None):
    """One training pass of ``make_layer()`` with its TensorFlow kernel, then of a copy with the
    ``keras.ops`` kernel (the layers' backend switch turned off): ((outputs, gradients), (outputs,
    gradients)), gradients with respect to the input and every trainable weight."""
    results = []
    for fast in (True, False):
        monkeypatch.setattr(layers, "_on_tensorflow", lambda fast=fast: fast)
        layer = make_layer()
        layer.build(x.shape)
        if weights is not None:
            layer.set_weights(weights)
        results.append(_values_and_gradients(layer, x, training=True))
    return results


def _assert_same(fast, generic, output_atol, gradient_atol=1e-4):
    (y_fast, g_fast), (y_generic, g_generic) = fast, generic
    assert np.abs(np.asarray(y_generic)).max() > 0
    np.testing.assert_allclose(y_fast, y_generic, atol=output_atol)
    assert len(g_fast) == len(g_generic)
    for a, b in zip(g_fast, g_generic):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=gradient_atol)


@pytest.mark.parametrize("shape", [(3, 9, 7, 4), (1, 8, 8, 2)])
def test_instance_norm_tensorflow_kernel_equals_its_keras_ops_kernel(monkeypatch, shape):
    x = tf.constant(np.random.default_rng(8).normal(1.0, 2.0, shape).astype("float32"))
    channels = shape[-1]
    weights = [np.linspace(0.5, 2.0, channels).astype("float32"), np.linspace(-1.0, 1.0, channels).astype("float32")]
    _assert_same(*_fast_and_generic(monkeypatch, lambda: InstanceNormalization(epsilon=1e-5), x, weights), output_atol=1e-5)


def test_instance_norm_bfloat16_kernel_equals_its_keras_ops_kernel_to_bfloat16_rounding(monkeypatch, dtype_policy_bfloat16):
    x = tf.constant(np.random.default_rng(9).normal(1.0, 2.0, (4, 6, 5, 4)).astype("float32"))
    outputs = []
    for fast in (True, False):  # N * C = 16: the fused bfloat16 kernel applies
        monkeypatch.setattr(layers, "_on_tensorflow", lambda fast=fast: fast)
        outputs.append(InstanceNormalization(epsilon=1e-5)(x))
    assert outputs[0].dtype == outputs[1].dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(outputs[0], tf.float32), tf.cast(outputs[1], tf.float32), atol=3e-2)


@pytest.mark.parametrize("pad", [1, 3])
def test_mirror_padding_tensorflow_kernel_equals_its_keras_ops_kernel(monkeypatch, pad):
    x = tf.constant(np.random.default_rng(10).normal(size=(2, 5, 7, 3)).astype("float32"))
    fast, generic = _fast_and_generic(monkeypatch, lambda: MirrorPadding2D(pad), x)
    _assert_same(fast, generic, output_atol=0, gradient_atol=1e-5)
    assert fast[0].shape == (2, 5 + 2 * pad, 7 + 2 * pad, 3)


def test_bilinear_upsampling_tensorflow_kernel_equals_its_keras_ops_kernel(monkeypatch):
    x = tf.constant(np.random.default_rng(11).random((2, 4, 6, 3)).astype("float32"))
    _assert_same(*_fast_and_generic(monkeypatch, BilinearUpsampling2D, x), output_atol=1e-6, gradient_atol=1e-5)


def test_sync_batch_norm_tensorflow_kernel_equals_its_keras_ops_kernel_on_one_replica(monkeypatch):
    x = tf.constant(np.random.default_rng(12).normal(3.0, 2.0, (4, 5, 5, 3)).astype("float32"))
    _assert_same(*_fast_and_generic(monkeypatch, lambda: SyncBatchNormalization(momentum=0.9, epsilon=1e-5), x),
                 output_atol=1e-5)


@pytest.fixture
def dtype_policy_bfloat16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    yield
    keras.config.set_dtype_policy(previous)


# ------------------------------------------------------------------------ against Keras' own layers
@pytest.mark.parametrize("scale_center", [(True, True), (False, True)])
def test_fused_batch_norm_matches_keras_in_training(scale_center):
    scale, center = scale_center
    x = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, (3, 5, 4, 6)).astype("float32"))
    keras_bn = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, scale=scale, center=center)
    fused_bn = FusedBatchNormalization(momentum=0.9, epsilon=1e-5, scale=scale, center=center)
    if scale:
        keras_bn.build(x.shape)
        keras_bn.gamma.assign(np.linspace(0.5, 1.5, 6).astype("float32"))
    _assert_same_training_pass(keras_bn, fused_bn, x, output_atol=2e-5)
    # Moving statistics moved, and moved the same way (Keras tracks the biased variance).
    np.testing.assert_allclose(fused_bn.moving_mean, keras_bn.moving_mean, atol=1e-5)
    np.testing.assert_allclose(fused_bn.moving_variance, keras_bn.moving_variance, rtol=1e-5)
    assert float(np.abs(np.asarray(fused_bn.moving_mean)).max()) > 0.1


def test_fused_batch_norm_inference_and_round_trip(tmp_path):
    inputs = keras.Input((8, 8, 3))
    outputs = FusedBatchNormalization(name="bn")(inputs)
    model = keras.Model(inputs, outputs)
    model.get_layer("bn").moving_mean.assign([1.0, 2.0, 3.0])
    x = np.random.default_rng(1).random((2, 8, 8, 3)).astype("float32")
    expected = (x - np.array([1.0, 2.0, 3.0])) / np.sqrt(1.0 + 1e-3)
    np.testing.assert_allclose(model(x, training=False), expected, atol=1e-5)

    path = tmp_path / "bn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("bn"), FusedBatchNormalization)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_wide_input_conv_gradients_match_conv2d(kernel_size):
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=(2, 7, 9, 12)).astype("float32"))
    plain = keras.layers.Conv2D(3, kernel_size, padding="same", use_bias=True)
    wide = WideInputConv2D(3, kernel_size, padding="same", use_bias=True)
    plain.build(x.shape)
    plain.bias.assign([0.1, -0.2, 0.3])
    _assert_same_training_pass(plain, wide, x, output_atol=1e-4)


def test_wide_input_conv_traces_with_unknown_spatial_size():
    wide = WideInputConv2D(2, 3, padding="same")
    wide.build((None, None, None, 8))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 8], tf.float32)])
    def kernel_gradient(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(wide(x, training=True) ** 2)
        return tape.gradient(loss, wide.kernel)

    x = tf.constant(np.random.default_rng(3).normal(size=(1, 6, 10, 8)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.nn.conv2d(x, wide.kernel, 1, "SAME") ** 2)
    np.testing.assert_allclose(kernel_gradient(x), tape.gradient(loss, wide.kernel), rtol=1e-4, atol=1e-3)


def test_conv_norm_act_picks_wide_input_conv_only_for_wide_inputs():
    wide_in = keras.Input((8, 8, 64))
    narrow_in = keras.Input((8, 8, 16))
    model_wide = keras.Model(wide_in, conv_norm_act(wide_in, 16, 3, 1, "batch", name="w"))
    model_narrow = keras.Model(narrow_in, conv_norm_act(narrow_in, 16, 3, 1, "batch", name="n"))
    assert any(isinstance(layer, WideInputConv2D) for layer in model_wide.layers)
    assert not any(isinstance(layer, WideInputConv2D) for layer in model_narrow.layers)
    assert any(isinstance(layer, FusedBatchNormalization) for layer in model_narrow.layers)


@pytest.fixture
def fused_adam_calls(monkeypatch):
    """Records each call of TensorFlow's fused Adam kernel (the kernel still runs)."""
    calls = []
    fused_kernel = tf.raw_ops.ResourceApplyAdam
    monkeypatch.setattr(tf.raw_ops, "ResourceApplyAdam", lambda **kw: calls.append(1) or fused_kernel(**kw))
    return calls


def _adam_steps(optimizer, initial, gradients):
    """``initial`` after one ``apply_gradients`` per gradient, and the optimiser's iteration count."""
    variable = keras.Variable(initial)
    for gradient in gradients:
        optimizer.apply_gradients([(tf.constant(gradient), variable)])
    return np.asarray(variable), int(optimizer.iterations)


def test_fused_adam_matches_keras_adam_over_steps(fused_adam_calls):
    rng = np.random.default_rng(4)
    initial = rng.normal(size=(4, 3)).astype("float32")
    gradients = [np.sin(initial * (step + 1)).astype("float32") for step in range(6)]
    schedule = keras.optimizers.schedules.ExponentialDecay(2e-3, decay_steps=2, decay_rate=0.5)
    keras_value, keras_iterations = _adam_steps(keras.optimizers.Adam(schedule, beta_1=0.5), initial, gradients)
    fused_value, fused_iterations = _adam_steps(FusedAdam(schedule, beta_1=0.5), initial, gradients)
    assert fused_iterations == keras_iterations == 6
    assert len(fused_adam_calls) == 6  # FusedAdam took the fused kernel, not Keras' fallback
    assert np.abs(fused_value - initial).max() > 1e-3  # it did move
    np.testing.assert_allclose(fused_value, keras_value, rtol=1e-5, atol=1e-7)


def test_fused_adam_falls_back_for_amsgrad(fused_adam_calls):
    """The fused kernel has no AMSGrad; FusedAdam(amsgrad=True) runs Keras' update, which keeps the
    running maximum of the second moment (shrinking gradients and a short second-moment memory make
    it differ from plain Adam)."""
    initial = np.ones((3,), "float32")
    gradients = [np.array([1.0, -1.0, 0.5], "float32") * 0.1**step for step in range(5)]
    fused_value, _ = _adam_steps(FusedAdam(0.1, amsgrad=True, beta_2=0.5), initial, gradients)
    keras_value, _ = _adam_steps(keras.optimizers.Adam(0.1, amsgrad=True, beta_2=0.5), initial, gradients)
    plain_value, _ = _adam_steps(keras.optimizers.Adam(0.1, beta_2=0.5), initial, gradients)
    assert not fused_adam_calls  # the fused kernel never ran
    np.testing.assert_allclose(fused_value, keras_value, rtol=1e-6, atol=1e-7)
    assert np.abs(fused_value - plain_value).min() > 1e-2  # AMSGrad's update, not plain Adam's


def test_weight_files_are_interchangeable_with_plain_keras_and_synchronised_generators(tmp_path):
    """Keras files weights by class name; the library's layers keep Keras' names, so generators
    built with plain Keras layers, with the fused ones and with synchronised batch norm read each
    other's weight files (models saved before these classes existed used plain Keras layers)."""
    # Decoder stages narrower than a quarter of their input, so WideInputConv2D is in the network.
    config = tiny_config(**{"generator.decoder_widths": (2, 2, 2, 2, 2), "generator.normalization": "batch"})
    keras.utils.set_random_seed(5)
    library = build_generator(config)
    assert any(isinstance(layer, WideInputConv2D) for layer in library.layers)
    assert any(isinstance(layer, FusedBatchNormalization) for layer in library.layers)

    keras.utils.set_random_seed(6)
    plain = build_generator(config, fused_kernels=False)
    assert not any(isinstance(layer, (WideInputConv2D, FusedBatchNormalization)) for layer in plain.layers)
    keras.utils.set_random_seed(7)
    synchronised = build_generator(config, sync_batch_norm=True)

    # Give every variable a distinct value, so a weight landing in the wrong layer cannot go unseen.
    for index, variable in enumerate(plain.weights):
        variable.assign(np.full(variable.shape, index + 1.0, "float32"))
    plain.save_weights(tmp_path / "plain.weights.h5")
    for model in (library, synchronised):
        model.load_weights(tmp_path / "plain.weights.h5")
        for expected, variable in zip(plain.weights, model.weights):
            np.testing.assert_array_equal(variable.numpy(), expected.numpy())
    synchronised.save_weights(tmp_path / "synchronised.weights.h5")
    plain.load_weights(tmp_path / "synchronised.weights.h5")
    assert float(plain.weights[-1].numpy().ravel()[0]) == len(plain.weights)
