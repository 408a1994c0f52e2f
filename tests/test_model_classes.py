"""Every model class passes the keras-hub-style checks of tests/model_checks.py: config round trip,
``.keras`` save and load with equal outputs, and a forward pass under mixed precision."""

import numpy as np
import pytest

from model_checks import run_model_checks
from ssp_keras.evaluation.csnet import CSNet
from ssp_keras.networks import PatchDiscriminator, SSPGenerator
from ssp_keras.training.model import SSPNet
from tiny import TINY_GENERATOR, randomised

IMAGES = np.random.default_rng(0).random((2, 64, 64, 1)).astype("float32")


def _sspnet_arguments():
    return dict(
        generator=SSPGenerator(channels=1, **TINY_GENERATOR),
        discriminator=PatchDiscriminator(channels=1, base_width=4),
        iu_patch_sizes=(8, 16),
        history_pool_size=2,
        seed=3,
    )


MODELS = {
    "SSPGenerator": (SSPGenerator, dict(channels=1, **TINY_GENERATOR)),
    "PatchDiscriminator": (PatchDiscriminator, dict(channels=1, base_width=4)),
    "CSNet": (CSNet, dict(channels=1, base_width=4, depth=2, attention_reduction=2)),
    "SSPNet": (SSPNet, _sspnet_arguments),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_model_class_round_trips_saves_and_runs_in_mixed_precision(name, tmp_path):
    cls, init_kwargs = MODELS[name]
    run_model_checks(cls, init_kwargs, IMAGES, tmp_path, prepare=lambda model: randomised(model, seed=1, scale=0.2))
