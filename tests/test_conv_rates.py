"""benchmarks/conv_rates.py's pieces: its Winograd formulation is the convolution it is compared with,
and its op census finds and classifies a traced step's convolutions."""

import importlib.util
import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def conv_rates():
    sys.path.insert(0, str(REPOSITORY / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("conv_rates_benchmark", REPOSITORY / "benchmarks" / "conv_rates.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(REPOSITORY / "benchmarks"))


@pytest.mark.parametrize("shape", [(2, 10, 8, 3, 5), (1, 6, 12, 16, 1)])
def test_winograd_equals_the_direct_convolution(conv_rates, shape):
    n, height, width, channels, filters = shape
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(n, height, width, channels)), tf.float32)
    kernel = tf.constant(rng.normal(size=(3, 3, channels, filters)), tf.float32)
    expected = tf.nn.conv2d(x, kernel, 1, "VALID")
    got = conv_rates.winograd_conv2d(x, kernel)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)
    # Its gradients (autodiff of the same ops, timed as forward + backward) are the convolution's too.
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, kernel])
        direct = tf.reduce_sum(tf.nn.conv2d(x, kernel, 1, "VALID") ** 2)
        winograd = tf.reduce_sum(conv_rates.winograd_conv2d(x, kernel) ** 2)
    for variable in (x, kernel):
        np.testing.assert_allclose(tape.gradient(winograd, variable).numpy(), tape.gradient(direct, variable).numpy(),
                                   rtol=1e-3, atol=1e-3)


def test_winograd_refuses_odd_outputs(conv_rates):
    with pytest.raises(ValueError, match="even output sides"):
        conv_rates.winograd_conv2d(tf.zeros((1, 7, 8, 2)), tf.zeros((3, 3, 2, 2)))


def test_census_counts_and_classifies_a_traced_functions_convolutions(conv_rates):
    x_spec = tf.TensorSpec((2, 18, 18, 4), tf.float32)
    w3 = tf.Variable(tf.random.normal((3, 3, 4, 8)))
    w4 = tf.Variable(tf.random.normal((4, 4, 8, 8)))
    w1 = tf.Variable(tf.random.normal((1, 1, 8, 8)))

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            y = tf.nn.conv2d(x, w3, 1, "VALID")            # 16x16x8
            y = tf.nn.conv2d(y, w4, 2, "SAME")             # 8x8x8
            y = tf.nn.conv2d(y, w1, 2, "VALID")            # 4x4x8 (a 1x1 kernel at stride 2 skips the last row)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [w3, w4, w1])

    signatures = conv_rates.collect_signatures(step.get_concrete_function(x_spec))
    by_type = {}
    for key, (count, flops) in signatures.items():
        by_type.setdefault(key[0], []).append((conv_rates.kernel_and_stride(key), count, flops))
    assert {kind for kind, _, _ in by_type["Conv2D"]} == {(3, 1), (4, 2), (1, 2)}
    # Kernel gradients of all three; input gradients of the second and third only (x needs none).
    assert {kind for kind, _, _ in by_type["Conv2DBackpropFilter"]} == {(3, 1), (4, 2), (1, 2)}
    assert {kind for kind, _, _ in by_type["Conv2DBackpropInput"]} == {(4, 2), (1, 2)}
    forward_3x3 = next(flops for kind, _, flops in by_type["Conv2D"] if kind == (3, 1))
    assert forward_3x3 == 2 * 2 * 16 * 16 * 3 * 3 * 4 * 8
