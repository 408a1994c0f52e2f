"""Finding and loading a generator from what a user types after ``--model``.

Accepted, in this order:

* a run folder (``ssp-net train --out RUN_DIR``) holding ``generator.keras``;
* a ``.keras`` file (an `SSPGenerator`, or any Keras model taking ``[N, H, W, C]`` images in
  [0, 1] with H and W free, C = 1 or 3);
* the name of a bundled pretrained model (`ssp_keras.pretrained`), e.g. ``ccmid-lite``.

Anything else is an `InputError` naming what was given and what would have been accepted.
"""

from __future__ import annotations

import os

from ssp_keras.errors import InputError

#: The file a training run saves its generator to, inside the run folder.
GENERATOR_FILE = "generator.keras"


def resolve_generator_path(source: str) -> str:
    """The ``.keras`` file that ``source`` (run folder, file or pretrained name) designates."""
    from ssp_keras.pretrained import PRETRAINED, is_pretrained_name, pretrained_path
    from ssp_keras.utils.files import keras_file_in

    path = keras_file_in(source, GENERATOR_FILE, "is it a finished training run?")
    if path is not None:
        return path
    if is_pretrained_name(source):
        try:
            return pretrained_path(source)
        except ValueError as error:
            raise InputError(str(error)) from None
    raise InputError(
        f"model not found: '{source}' is neither a run folder with {GENERATOR_FILE}, a .keras file, "
        f"nor a pretrained name ({', '.join(sorted(PRETRAINED))})"
    )


def load_generator(source: str):
    """Loads the generator designated by ``source`` (see module doc), ready for inference.

    Returns a Keras model with a 4-D image input whose channel count is known
    (`ssp_keras.inference.enhance.model_channels`). Raises `InputError` naming the file when it
    is missing, not a Keras archive, or not an image-to-image model.
    """
    import keras

    import ssp_keras.networks  # noqa: F401  (registers SSPGenerator for deserialisation)
    from ssp_keras.inference.enhance import model_channels

    path = resolve_generator_path(source)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # zip, JSON and h5 errors all mean "not a usable model file"
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InputError(f"cannot load the model '{path}': {reason}") from error
    if not isinstance(model, keras.Model):
        raise InputError(f"'{path}' holds a {type(model).__name__}, not a Keras model")
    shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else ()
    if len(model.inputs or ()) != 1 or len(shape) != 4:
        raise InputError(f"'{path}' is not an image model: expected one [N, H, W, C] input, got {shape}")
    if shape[1] is not None or shape[2] is not None:
        raise InputError(
            f"'{path}' takes fixed-size {list(shape)} inputs; enhancing any image size needs a model "
            "whose height and width are free ([None, None, None, C])"
        )
    channels = model_channels(model)
    if channels not in (1, 3):
        raise InputError(f"'{path}' takes {channels}-channel images; only 1 (gray) and 3 (RGB) are supported")
    return model
