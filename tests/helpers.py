"""Helpers shared by several test files (not a test module: nothing here is collected).

Test files import from here, or from ``tiny`` (tiny configurations and models), never from each
other (tests/ is on sys.path under pytest).
"""

import numpy as np


def random_image(height, width, channels=1, seed=0):
    """Uniform noise, float32 ``[height, width, channels]`` in [0, 1)."""
    return np.random.default_rng(seed).random((height, width, channels), dtype=np.float32)


def pink_noise(size, seed, exponent=1.5):
    """A texture with a natural-image-like 1/f^exponent amplitude spectrum, float64 in [0, 1]."""
    rng = np.random.default_rng(seed)
    frequencies = np.fft.fftfreq(size)
    radius = np.hypot(frequencies[:, None], frequencies[None, :])
    radius[0, 0] = 1.0
    spectrum = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) / radius**exponent
    texture = np.real(np.fft.ifft2(spectrum))
    return (texture - texture.min()) / (texture.max() - texture.min())


def run_cli(monkeypatch, argv, subcommands=("enhance", "export", "predict")):
    """``ssp-net ARGV`` in this process (``ssp_keras.cli.main.main``); its exit status.

    Only ``subcommands`` are registered (others may not exist yet in a partial checkout).
    """
    from ssp_keras.cli import main as cli_main

    monkeypatch.setattr(cli_main, "SUBCOMMANDS", tuple(subcommands))
    return cli_main.main(argv)
