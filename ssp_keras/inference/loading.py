"""Finding and loading a generator from what a user types after ``--model``.

Accepted, in this order:

* a run folder (``ssp-net train --out RUN_DIR``) holding ``generator.keras``;
* a ``.keras`` file (an `SSPGenerator`, or any Keras model taking ``[N, H, W, C]`` images in
  [0, 1] with H and W free, C = 1 or 3);
* the name of a bundled pretrained model (`ssp_keras.pretrained`), e.g. ``ccmid-lite``.

Anything else is an `InputError` naming what was given and what would have been accepted.
"""

from __future__ import annotations

from ssp_keras.defaults import CHANNEL_COUNTS
from ssp_keras.errors import InputError
from ssp_keras.precision import INFERENCE_PRECISIONS, resolve_inference_precision  # noqa: F401  (re-exported)

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


def load_keras_file(path: str, what: str = "model"):
    """``keras.saving.load_model(path, compile=False)``, or an `InputError` naming the file.

    The one way ssp-keras opens a ``.keras`` file (generators here, segmenters in
    `ssp_keras.segmentation.inference`): a file that is no zip archive, an archive without
    a model, or one that holds something other than a Keras model is one clear line, not
    Keras' own ("File not found" for a truncated file); so is a model whose weights hold NaN or Inf
    (it would turn every image into NaN). ``what`` names the file's role ("model", "segmenter").
    """
    import keras

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # zip, JSON and h5 errors all mean "not a usable model file"
        import zipfile

        # Keras says "File not found" for a file that exists but is no zip archive (truncated...).
        if not zipfile.is_zipfile(path):
            reason = "it is not a zip archive, as a .keras file is (truncated, or another format?)"
        else:
            text = error.args[0] if isinstance(error, KeyError) and error.args else error
            reason = (str(text).strip().splitlines() or [type(error).__name__])[0]
        raise InputError(f"the {what} file '{path}' exists but is not a readable Keras model: {reason}") from error
    if not isinstance(model, keras.Model):
        raise InputError(f"'{path}' holds a {type(model).__name__}, not a Keras model")
    from ssp_keras.utils.variables import non_finite_variables

    bad = non_finite_variables((variable.path, variable) for variable in model.weights)
    if bad:  # e.g. saved by a run that diverged: every output would be NaN, whatever the image
        raise InputError(f"the {what} file '{path}' holds NaN or infinite weights ({len(bad)} variable(s), first "
                         f"'{bad[0]}'): it was saved from a training run that diverged; use an earlier model")
    return model


def load_generator(source: str, precision: str = "float32"):
    """Loads the generator designated by ``source`` (see module doc), ready for inference.

    precision: ``float32`` (the saved weights as they are), ``bfloat16``, or ``auto``: bfloat16
      where the CPU computes it natively (`ssp_keras.precision`); see `with_precision`.

    Returns a Keras model with a 4-D image input whose channel count is known
    (`ssp_keras.inference.compiled.model_channels`). Raises `InputError` naming the file when it
    is missing, not a Keras archive, or not an image-to-image model.
    """
    precision = resolve_inference_precision(precision)
    path = resolve_generator_path(source)  # first: a missing model is reported before Keras loads
    import ssp_keras.networks  # noqa: F401  (registers SSPGenerator for deserialisation)
    from ssp_keras.inference.compiled import model_channels

    model = load_keras_file(path)
    shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else ()
    if len(model.inputs or ()) != 1 or len(shape) != 4:
        raise InputError(f"'{path}' is not an image model: expected one [N, H, W, C] input, got {shape}")
    if shape[1] is not None or shape[2] is not None:
        raise InputError(
            f"'{path}' takes fixed-size {list(shape)} inputs; enhancing any image size needs a model "
            "whose height and width are free ([None, None, None, C])"
        )
    channels = model_channels(model)
    if channels not in CHANNEL_COUNTS:
        raise InputError(f"'{path}' takes {channels}-channel images; only 1 (gray) and 3 (RGB) are supported")
    return with_precision(model, precision)


def with_precision(generator, precision: str):
    """``generator`` computing in ``precision`` (``float32`` or ``bfloat16``), a copy if it does not.

    For ``bfloat16`` the copy is the same `SSPGenerator` built with the ``bfloat16`` dtype policy,
    so its weights are stored in bfloat16 (no cast per call) and its convolutions,
    normalisations and activations run in bfloat16; the output layer still computes in float32
    and returns float32 in [0, 1]. Outputs differ from float32 by well under one grey level on
    average (measured in ``benchmarks/inference.py``). For ``float32`` a generator built with
    another policy (e.g. trained with ``mixed_bfloat16``) is rebuilt in float32. Other Keras
    models are returned unchanged: only our own network's layers are known to be safe in bfloat16.
    """
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"precision must be 'float32' or 'bfloat16', got {precision!r}")
    from ssp_keras.networks import SSPGenerator

    if not isinstance(generator, SSPGenerator) or generator.dtype_policy.name == precision:
        return generator
    copy = SSPGenerator(**{**generator.get_config(), "dtype": precision}, fused_kernels=generator.fused_kernels)
    copy.set_weights(generator.get_weights())
    return copy
