import numpy as np
import pytest
import tensorflow as tf

from ssp_keras.losses import adversarial_loss, illumination_uniformity_loss, structure_loss


def _ramp(strength, size=64):
    ramp = np.linspace(1.0 - strength, 1.0, size, dtype=np.float32)
    return np.broadcast_to(0.5 * ramp[None, None, :, None], (2, size, size, 1)).copy()


def test_illumination_loss_is_zero_on_a_constant_image():
    np.testing.assert_allclose(illumination_uniformity_loss(tf.fill([2, 64, 64, 1], 0.7), (8, 16)).numpy(), 0.0, atol=1e-5)


def test_illumination_loss_grows_with_the_planted_ramp():
    values = [float(tf.reduce_mean(illumination_uniformity_loss(_ramp(s), (8, 16)))) for s in (0.0, 0.2, 0.5, 0.9)]
    assert values[0] < 1e-6
    assert values == sorted(values) and values[-1] > 0.05


def test_illumination_loss_known_value_for_a_step():
    # Left half 0, right half 1: patch means are 0 or 1, the global mean 1/2, so |M_p - mu| = 1/2
    # everywhere before upsampling; bicubic overshoot at the edge keeps the mean close to 1/2.
    image = np.zeros((1, 64, 64, 1), np.float32)
    image[:, :, 32:] = 1.0
    value = float(illumination_uniformity_loss(image, (8, 16))[0])
    assert 0.45 < value < 0.55


def test_illumination_loss_matches_tf_resize_bicubic():
    # The separable-matrix upsampling equals tf.image.resize(bicubic) of the patch deviations.
    images = tf.random.stateless_uniform([2, 64, 96, 1], seed=[1, 2])
    patch = 64 // 8
    deviation = tf.nn.avg_pool2d(images, patch, patch, "VALID") - tf.reduce_mean(images, [1, 2], keepdims=True)
    reference = tf.reduce_mean(tf.abs(tf.image.resize(deviation, (64, 96), method="bicubic")), [1, 2, 3])
    ours = illumination_uniformity_loss(images, patch_sizes=(patch,))
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-5)


def test_illumination_patches_are_pixels_and_partial_edge_patches_are_plain_means():
    # 48-pixel patches on a 100-pixel image: a 3 x 3 grid whose last row/column holds 4 pixels;
    # the reference pools those partial patches over their own pixels and upsamples bicubically.
    images = tf.random.stateless_uniform([1, 100, 100, 1], seed=[9, 10])
    array = images.numpy()[0, :, :, 0]
    grid = np.array([[array[r:r + 48, c:c + 48].mean() for c in (0, 48, 96)] for r in (0, 48, 96)], np.float32)
    deviation = grid - array.mean()
    reference = tf.reduce_mean(tf.abs(tf.image.resize(deviation[None, :, :, None], (100, 100), method="bicubic")))
    np.testing.assert_allclose(float(illumination_uniformity_loss(images, (48,))[0]), float(reference), rtol=1e-5)
    with pytest.raises(ValueError, match="does not fit"):
        illumination_uniformity_loss(images, (128,))


def test_structure_of_an_image_with_itself_is_zero():
    a = tf.random.stateless_uniform([2, 48, 48, 1], seed=[3, 4])
    np.testing.assert_allclose(structure_loss(a, a).numpy(), 0.0, atol=1e-4)


def test_structure_of_an_image_with_its_negative_is_about_two():
    a = tf.random.stateless_uniform([2, 48, 48, 3], seed=[5, 6])
    np.testing.assert_allclose(structure_loss(a, 1.0 - a).numpy(), 2.0, atol=0.02)


def test_structure_ignores_brightness_and_contrast_changes():
    a = tf.random.stateless_uniform([1, 48, 48, 1], seed=[7, 8])
    assert float(structure_loss(a, 0.2 + 0.5 * a)[0]) < 0.01


def test_gradients_are_finite_on_constant_images():
    constant = tf.Variable(tf.fill([2, 32, 32, 1], 0.5))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(structure_loss(constant, tf.fill([2, 32, 32, 1], 0.25)))
        loss += tf.reduce_sum(illumination_uniformity_loss(constant, (8, 16)))
    gradient = tape.gradient(loss, constant)
    assert np.isfinite(gradient.numpy()).all()
    assert np.isfinite(loss.numpy())


@pytest.mark.parametrize("criterion, real_value, fake_value", [("lsgan", 0.0, 1.0), ("bce", np.log1p(np.exp(-3.0)), np.log1p(np.exp(3.0)))])
def test_adversarial_known_values(criterion, real_value, fake_value):
    logits = tf.fill([3, 4, 4, 1], 1.0 if criterion == "lsgan" else 3.0)
    np.testing.assert_allclose(adversarial_loss(logits, True, criterion).numpy(), real_value, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(adversarial_loss(logits, False, criterion).numpy(), fake_value, rtol=1e-5)
    with pytest.raises(ValueError, match="criterion"):
        adversarial_loss(logits, True, "wgan")


def test_flat_output_scores_as_perfect_structure_without_noise_but_not_with_it():
    # The degenerate minimum StillGAN's shared noise removes (see losses.structure).
    a = tf.random.stateless_uniform([2, 48, 48, 1], seed=[9, 10]) * 0.5 + 0.25
    flat = tf.fill([2, 48, 48, 1], 0.5)
    assert float(tf.reduce_mean(structure_loss(a, flat))) < 0.05
    noisy = float(tf.reduce_mean(structure_loss(a, flat, noise_stddev=0.01, seed=0)))
    assert noisy > 0.4
    # Identical images stay at 0 with the noise: both get the same draw.
    np.testing.assert_allclose(structure_loss(a, a, noise_stddev=0.01, seed=0).numpy(), 0.0, atol=1e-4)
