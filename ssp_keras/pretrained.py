"""Pretrained generators bundled with the project, found offline by name.

Each name maps to a folder under the repository's ``models/`` (a model card ``README.md`` and a
``generator.keras``). The folder is looked up, in order, under ``$SSP_KERAS_MODELS``, the
``models/`` folder of a source checkout, and ``<prefix>/share/ssp-keras/models`` where ``pip
install`` puts a copy (setup.cfg's data_files). Nothing is ever downloaded.
"""

from __future__ import annotations

import os

PRETRAINED = {
    "ccmid-lite": "ccmid-lite",
}


def _search_roots() -> list[str]:
    import sys

    package = os.path.dirname(os.path.abspath(__file__))
    roots = []
    if os.environ.get("SSP_KERAS_MODELS"):
        roots.append(os.environ["SSP_KERAS_MODELS"])
    roots.append(os.path.join(os.path.dirname(package), "models"))  # source checkout
    roots.append(os.path.join(sys.prefix, "share", "ssp-keras", "models"))  # pip-installed copy
    return roots


def pretrained_path(name: str) -> str:
    """Path of the ``generator.keras`` of a bundled model; ``ValueError`` for unknown names."""
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained model {name!r}; available: {sorted(PRETRAINED)}")
    for root in _search_roots():
        candidate = os.path.join(root, PRETRAINED[name], "generator.keras")
        if os.path.isfile(candidate):
            return candidate
    raise ValueError(
        f"pretrained model {name!r} is not on this machine (looked in {', '.join(_search_roots())}); "
        "install ssp-keras from the repository, or set SSP_KERAS_MODELS to a folder holding it"
    )


def pretrained_config(name: str):
    """The `SSPNetConfig` the bundled model ``name`` was trained with (its ``config.json``), or
    ``None`` where only its generator file is on this machine."""
    from ssp_keras.config import SSPNetConfig

    path = os.path.join(os.path.dirname(pretrained_path(name)), "config.json")
    return SSPNetConfig.from_file(path) if os.path.isfile(path) else None


def is_pretrained_name(name: str) -> bool:
    return name in PRETRAINED


def load_pretrained(name: str = "ccmid-lite"):
    """The bundled generator ``name`` as a Keras model (``[N, H, W, C]`` in [0, 1] -> same)."""
    import keras

    import ssp_keras.networks  # noqa: F401  (registers the custom classes)

    return keras.saving.load_model(pretrained_path(name), compile=False)
