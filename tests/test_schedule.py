import keras
import numpy as np
import pytest

from ssp_keras.training.schedule import WarmupHalvingSchedule


@pytest.fixture
def schedule():
    return WarmupHalvingSchedule(warmup_start=3e-5, peak=1e-4, warmup_steps=500, steps_per_epoch=100, halving_epochs=15)


@pytest.mark.parametrize(
    "step, expected",
    [
        (0, 3e-5),
        (250, 6.5e-5),
        (499, 3e-5 + 7e-5 * 499 / 500),
        (500, 1e-4),
        (1499, 1e-4),  # epoch 14
        (1500, 5e-5),  # epoch 15: first halving
        (2999, 5e-5),
        (3000, 2.5e-5),  # epoch 30
    ],
)
def test_boundaries(schedule, step, expected):
    np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-5)


def test_serialisation_round_trip(schedule):
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert restored.get_config() == schedule.get_config()
    assert float(restored(1600)) == float(schedule(1600))


def test_invalid_arguments():
    with pytest.raises(ValueError):
        WarmupHalvingSchedule(steps_per_epoch=0)
