"""The restoration degradation model (issue #21): blur, contrast loss, Poisson-Gaussian noise of G's LQ input."""

import keras
import numpy as np
import pytest

from ssp_keras.config import SSPNetConfig
from ssp_keras.training.degradation import RestorationDegradation, blur_kernels


def _np(value):
    return keras.ops.convert_to_numpy(value)


def _only(**settings):
    """A degradation with every probability 0 except those given."""
    values = dict(blur_probability=0.0, contrast_probability=0.0, noise_probability=0.0)
    values.update(settings)
    return RestorationDegradation(seed=7, **values)


def test_off_by_default_and_identity_outside_training():
    images = np.random.default_rng(0).random((2, 32, 32, 1), np.float32)
    assert not RestorationDegradation().active
    np.testing.assert_array_equal(_np(RestorationDegradation()(images, training=True)), images)
    on = _only(blur_probability=1.0, noise_probability=1.0)
    np.testing.assert_array_equal(_np(on(images, training=False)), images)


def test_gaussian_blur_spreads_a_point_by_sigma_and_keeps_its_mass():
    point = np.zeros((1, 41, 41, 1), np.float32)
    point[0, 20, 20, 0] = 1.0
    for sigma in (0.8, 1.6):
        blurred = _np(_only(blur_probability=1.0, defocus_share=0.0, blur_sigma=(sigma, sigma))(point, training=True))[0, :, :, 0]
        assert blurred.sum() == pytest.approx(1.0, abs=1e-4)
        rows = np.arange(41) - 20
        spread = np.sqrt((blurred.sum(axis=1) * rows**2).sum())
        assert spread == pytest.approx(sigma, rel=0.05)


def test_defocus_disk_has_the_radius_and_a_flat_top():
    point = np.zeros((1, 41, 41, 1), np.float32)
    point[0, 20, 20, 0] = 1.0
    disk = _np(_only(blur_probability=1.0, defocus_share=1.0, defocus_radius=(3.0, 3.0))(point, training=True))[0, :, :, 0]
    assert disk[20, 20] == pytest.approx(disk[20, 22], rel=1e-5)  # flat inside the radius
    assert disk[20, 24] == 0.0 and disk[20, 23] > 0.0  # anti-aliased edge at 3.5 px, nothing beyond
    assert disk.sum() == pytest.approx(1.0, abs=1e-4)


def test_blur_keeps_a_flat_image_flat_up_to_the_border():
    flat = np.full((2, 24, 24, 1), 0.6, np.float32)
    out = _np(_only(blur_probability=1.0, blur_sigma=(2.0, 2.0))(flat, training=True))
    np.testing.assert_allclose(out, flat, atol=1e-6)  # reflected borders: no dark band


def test_each_image_gets_its_own_kernel_and_unblurred_ones_the_identity():
    kernels = _np(blur_kernels(
        keras.ops.convert_to_tensor([1.0, 1.0, 2.0]), keras.ops.convert_to_tensor([2.0, 2.0, 2.0]),
        keras.ops.convert_to_tensor([1.0, 0.0, 1.0]), keras.ops.convert_to_tensor([0.0, 0.0, 1.0]), 6,
    ))
    assert kernels.shape == (3, 13, 13)
    np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 1.0, atol=1e-5)
    assert kernels[1, 6, 6] == 1.0 and kernels[1].sum() == 1.0  # not blurred: a delta
    assert kernels[0, 6, 6] > kernels[2, 6, 6]  # sigma 1 is sharper than a radius-2 disk


def test_contrast_loss_scales_deviations_around_the_mean():
    images = np.random.default_rng(1).random((3, 16, 16, 1), np.float32)
    out = _np(_only(contrast_probability=1.0, contrast=(0.5, 0.5))(images, training=True))
    np.testing.assert_allclose(out.mean(axis=(1, 2)), images.mean(axis=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2)), 0.5 * images.std(axis=(1, 2)), rtol=1e-4)


def test_poisson_gaussian_noise_follows_the_signal_and_the_read_floor():
    grey, dark = np.full((8, 64, 64, 1), 0.5, np.float32), np.full((8, 64, 64, 1), 0.125, np.float32)
    shot = _only(noise_probability=1.0, shot_noise=(0.04, 0.04), read_noise=(0.0, 0.0))
    assert np.std(_np(shot(grey, training=True)) - grey) == pytest.approx(0.04, rel=0.05)
    assert np.std(_np(shot(dark, training=True)) - dark) == pytest.approx(0.02, rel=0.05)  # sqrt(2 * 0.125) * 0.04
    read = _only(noise_probability=1.0, shot_noise=(0.0, 0.0), read_noise=(0.01, 0.01))
    assert np.std(_np(read(dark, training=True)) - dark) == pytest.approx(0.01, rel=0.05)


def test_probabilities_pick_a_share_of_the_crops():
    images = np.random.default_rng(2).random((200, 8, 8, 1), np.float32)
    out = _np(_only(noise_probability=0.3, shot_noise=(0.05, 0.05))(images, training=True))
    changed = np.abs(out - images).max(axis=(1, 2, 3)) > 0
    assert 0.2 < changed.mean() < 0.4


def test_seeded_draws_repeat_and_differ_between_seeds():
    images = np.random.default_rng(3).random((4, 32, 32, 1), np.float32)
    settings = dict(blur_probability=0.7, contrast_probability=0.7, noise_probability=0.7)
    first = _np(RestorationDegradation(seed=5, **settings)(images, training=True))
    again = _np(RestorationDegradation(seed=5, **settings)(images, training=True))
    other = _np(RestorationDegradation(seed=6, **settings)(images, training=True))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert 0.0 <= first.min() and first.max() <= 1.0


def test_settings_are_validated_and_round_trip():
    with pytest.raises(ValueError, match="RestorationDegradation argument 'blur_sigma'"):
        RestorationDegradation(blur_sigma=(2.0, 1.0))
    with pytest.raises(ValueError, match="'contrast'"):
        RestorationDegradation(contrast=(0.5, 1.5))
    with pytest.raises(ValueError, match="config field 'degradation.noise_probability'"):
        SSPNetConfig().replace(**{"degradation.noise_probability": 1.5})
    layer = RestorationDegradation(blur_probability=0.5, shot_noise=(0.01, 0.03), seed=3)
    again = RestorationDegradation.from_config(layer.get_config())
    assert again.get_config() == layer.get_config() and again.shot_noise == (0.01, 0.03)
    config = SSPNetConfig().replace(**{"degradation.blur_sigma": [1.0, 1.5]})
    assert SSPNetConfig.from_json(config.to_json()).degradation.blur_sigma == (1.0, 1.5)


def test_a_checkpoint_carries_the_random_streams(tmp_path):
    """A resumed run continues the degradation and noise draws instead of repeating its first ones."""
    from ssp_keras.training import build_optimizers, build_sspnet
    from ssp_keras.training.callbacks import restore_training_state, save_training_state
    from tiny import tiny_config

    config = tiny_config(**{"degradation.blur_probability": 1.0, "degradation.noise_probability": 1.0,
                            "loss.denoising_noise": 0.05})

    def compiled():
        model = build_sspnet(config)
        model.compile(*build_optimizers(config, 10))
        return model

    images = np.random.default_rng(3).random((2, 64, 64, 1), np.float32)
    first = compiled()
    for _ in range(3):  # advance the streams as training steps would
        first.degradation(images, training=True)
        keras.random.uniform((2,), seed=first.noise_seed)
    save_training_state(first, str(tmp_path / "state-epoch0001.npz"), 1)

    resumed = compiled()
    assert restore_training_state(resumed, str(tmp_path)) == 1
    np.testing.assert_array_equal(_np(resumed.degradation(images, training=True)),
                                  _np(first.degradation(images, training=True)))
    np.testing.assert_array_equal(_np(keras.random.uniform((2,), seed=resumed.noise_seed)),
                                  _np(keras.random.uniform((2,), seed=first.noise_seed)))
    fresh = compiled()  # without the restore, the draws would be the first epoch's again
    assert not np.array_equal(_np(fresh.degradation(images, training=True)),
                              _np(resumed.degradation(images, training=True)))
