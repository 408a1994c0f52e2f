"""Tiny configurations and models shared by the tests: the real architectures, a few thousand parameters."""

import numpy as np

from ssp_keras.config import preset

#: Overrides (dotted config keys) that shrink the lite preset to a seconds-fast model.
TINY_OVERRIDES = {
    "generator.encoder_block": "basic",
    "generator.encoder_stages": (1, 1, 1, 1),
    "generator.encoder_widths": (4, 4, 8, 8),
    "generator.stem_width": 4,
    "generator.decoder_widths": (8, 8, 4, 4, 4),
    "discriminator.base_width": 4,
    "data.image_size": 64,
    "loss.iu_patch_sizes": (8, 16),
    "train.batch_size": 2,
    # Pinned, not "auto": numerical comparisons must not depend on whether the CPU has bfloat16.
    "train.precision": "float32",
}


def tiny_config(**overrides):
    """The tiny configuration, with further dotted-key overrides."""
    return preset("lite").replace(**{**TINY_OVERRIDES, **overrides})


def randomised(model, seed: int = 0, scale: float = 0.3):
    """``model`` with random kernels and normalisation weights (in place; returned for chaining).

    An untrained generator with the output skip is the identity (its last convolution starts at
    zero), which would make comparisons of its outputs vacuous; this gives every layer weight.
    """
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        path = variable.path
        if "kernel" in path or "gamma" in path or "beta" in path:
            base = 1.0 if "gamma" in path else 0.0
            variable.assign(base + scale * rng.standard_normal(variable.shape).astype("float32"))
    return model


#: `SSPGenerator` arguments of the smallest generator that still has every part (5 down, 5 up stages).
TINY_GENERATOR = dict(
    encoder_block="basic", encoder_stages=(1, 1, 1, 1), encoder_widths=(4, 4, 8, 8), stem_width=4,
    decoder_widths=(8, 8, 4, 4, 4),
)


def random_tiny_config_generator(seed=11, scale=0.25):
    """`tiny_config`'s generator (`build_generator`: the architecture a training run builds) with
    random weights throughout (`randomised`)."""
    import keras

    from ssp_keras.networks import build_generator

    keras.utils.set_random_seed(seed)
    return randomised(build_generator(tiny_config()), seed=seed, scale=scale)


def tiny_generator(channels=1):
    """The tiny `SSPGenerator`, with random weights throughout (untrained, its output skip would
    make it the identity)."""
    import keras

    from ssp_keras.networks import SSPGenerator

    keras.utils.set_random_seed(1)
    return randomised(SSPGenerator(channels=channels, **TINY_GENERATOR), seed=1, scale=0.2)


def tiny_config_file(folder, **overrides):
    """``folder/tiny.json``: `tiny_config` with ``overrides``, for ``--config``."""
    path = folder / "tiny.json"
    tiny_config(**overrides).to_json(str(path))
    return path


def tiny_corn_root(folder, count=2, size=64):
    """A CORN-style root of ``count`` synthetic LQ and HQ images of ``size`` pixels (trainA/, trainB/, testA/)."""
    from ssp_keras.data.synthetic import generate_dataset

    generate_dataset(str(folder), count=count, size=size, seed=0, test_count=1)
    return folder
