"""Exporting a generator as a SavedModel for TensorFlow Serving (SPEC section 7).

Layout: ``<base>/<name>/<version>/`` with an integer version, which is what
``tensorflow_model_server --model_base_path=<base>/<name>`` polls. A version is built in a hidden
temporary sibling (``<base>/<name>/.tmp-<version>-XXXX``, a name the server ignores because it is
not an integer) and renamed into place when complete, so a polling server never loads half a
model. Existing versions are never overwritten.

Signatures (all with free N, H and W; C is the generator's channel count):

* ``serving_default``: ``images`` uint8 ``[N, H, W, C]`` -> ``enhanced`` uint8 ``[N, H, W, C]``;
* ``enhance_float``: ``images`` float32 ``[N, H, W, C]`` in [0, 1] -> ``enhanced`` float32, same
  shape, in [0, 1];
* ``enhance_png``: ``image_bytes`` string ``[N]`` of encoded PNG/JPEG/BMP/GIF (REST clients send
  ``{"b64": ...}``; the ``_bytes`` suffix tells TF Serving's REST API to base64 it) ->
  ``png_bytes`` string ``[N]``; each image may have its own size. 16-bit PNGs come back as 16-bit
  PNGs, everything else as 8-bit PNGs. Channels are converted as ``ssp_keras.data.io`` does when
  reading files: alpha dropped, BT.601 luma for colour into a gray model, gray replicated for RGB.

Every signature pads and crops with `ssp_keras.inference.enhance.enhance_tensor`, the same
function ``ssp-net enhance`` runs, so served and local results agree (to one grey level after
8-bit quantisation). Undecodable bytes, wrong dtypes or ranks are rejected by the graph with
INVALID_ARGUMENT.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
from typing import Optional

from ssp_keras.errors import InputError

DEFAULT_MODEL_NAME = "ssp_net"
SIGNATURE_UINT8 = "serving_default"
SIGNATURE_FLOAT = "enhance_float"
SIGNATURE_PNG = "enhance_png"
INPUT_IMAGES = "images"
INPUT_IMAGE_BYTES = "image_bytes"
OUTPUT_ENHANCED = "enhanced"
OUTPUT_PNG_BYTES = "png_bytes"
#: TF Serving replays these requests when it loads a version (``assets.extra`` is its convention).
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
#: Side of the image in the warm-up request (small: shapes are dynamic, nothing compiles per size).
WARMUP_SIZE = 64

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """Where `export_saved_model` wrote: ``path`` = ``<base>/<name>/<version>``."""

    path: str
    name: str
    version: int


def serving_functions(model):
    """The three signature functions of the module doc, as plain functions of TF tensors.

    Returns ``{signature_name: (function, [tf.TensorSpec])}``. Shared by the export and by tests
    that want to run a signature without writing a SavedModel.
    """
    import tensorflow as tf

    from ssp_keras.data.io import LUMA_WEIGHTS
    from ssp_keras.inference.enhance import enhance_tensor, model_channels

    channels = model_channels(model)
    # The network traced once, as one function all three signatures call: saving re-traces each
    # signature several times, and re-tracing the Keras layers every time costs seconds.
    network = tf.function(
        lambda images: model(images, training=False),
        input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32)],
    )

    def traceable(images, training=False):
        return network(images)

    def enhance_uint8(images):
        enhanced = enhance_tensor(traceable, tf.cast(images, tf.float32) / 255.0)
        return {OUTPUT_ENHANCED: tf.cast(tf.round(enhanced * 255.0), tf.uint8)}

    def enhance_float(images):
        return {OUTPUT_ENHANCED: enhance_tensor(traceable, images)}

    def to_model_channels(image):
        """``[H, W, 1..4]`` (gray, gray+alpha, RGB, RGBA) to ``[H, W, channels]`` like data.io does:
        alpha dropped, BT.601 luma for colour into a gray model, gray replicated for an RGB one."""
        have = tf.shape(image)[-1]
        colour = tf.cond(have >= 3, lambda: image[:, :, :3], lambda: tf.tile(image[:, :, :1], [1, 1, 3]))
        if channels == 3:
            return tf.ensure_shape(colour, [None, None, 3])
        luma = tf.clip_by_value(tf.reduce_sum(colour * LUMA_WEIGHTS, axis=-1, keepdims=True), 0.0, 1.0)
        gray = tf.cond(have >= 3, lambda: luma, lambda: image[:, :, :1])
        return tf.ensure_shape(gray, [None, None, 1])

    def enhance_one_encoded(data):
        # 16-bit PNGs are decoded (and re-encoded) at 16 bits; the IHDR bit depth is byte 24.
        header = tf.strings.substr(data + b"\0" * 25, 0, 25)
        is_png16 = tf.logical_and(
            tf.equal(tf.strings.substr(header, 0, 8), _PNG_SIGNATURE),
            tf.equal(tf.strings.substr(header, 24, 1), b"\x10"),
        )
        # channels=0 keeps the file's own (BMP and GIF decoders refuse 1); converted below.
        image = tf.cond(
            is_png16,
            lambda: tf.cast(tf.io.decode_png(data, channels=0, dtype=tf.uint16), tf.float32) / 65535.0,
            lambda: tf.cast(
                tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False), tf.float32
            ) / 255.0,
        )
        image = to_model_channels(image)
        enhanced = enhance_tensor(traceable, image[tf.newaxis])[0]
        return tf.cond(
            is_png16,
            lambda: tf.io.encode_png(tf.cast(tf.round(enhanced * 65535.0), tf.uint16)),
            lambda: tf.io.encode_png(tf.cast(tf.round(enhanced * 255.0), tf.uint8)),
        )

    def enhance_png(image_bytes):
        encoded = tf.map_fn(enhance_one_encoded, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string))
        return {OUTPUT_PNG_BYTES: encoded}

    images_shape = [None, None, None, channels]
    return {
        SIGNATURE_UINT8: (enhance_uint8, [tf.TensorSpec(images_shape, tf.uint8, name=INPUT_IMAGES)]),
        SIGNATURE_FLOAT: (enhance_float, [tf.TensorSpec(images_shape, tf.float32, name=INPUT_IMAGES)]),
        SIGNATURE_PNG: (enhance_png, [tf.TensorSpec([None], tf.string, name=INPUT_IMAGE_BYTES)]),
    }


def next_version(model_dir: str) -> int:
    """1 + the largest integer-named subfolder of ``model_dir`` (1 when there is none)."""
    versions = existing_versions(model_dir)
    return max(versions) + 1 if versions else 1


def existing_versions(model_dir: str) -> list:
    """Sorted integer versions present in ``model_dir`` (folders named by digits only)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(
        int(entry)
        for entry in os.listdir(model_dir)
        if entry.isdigit() and os.path.isdir(os.path.join(model_dir, entry))
    )


def export_saved_model(
    model,
    base_dir: str,
    name: str = DEFAULT_MODEL_NAME,
    version: Optional[int] = None,
    warmup: bool = True,
) -> ExportResult:
    """Writes ``model`` as ``<base_dir>/<name>/<version>/`` atomically; see the module doc.

    model: a generator (Keras model, ``[N, H, W, C]`` in [0, 1] -> same) or what ``--model``
      accepts (run folder, ``.keras`` file, pretrained name; see `ssp_keras.inference.loading`).
    version: a positive integer, or None for the next free one.
    warmup: also write ``assets.extra/tf_serving_warmup_requests`` (one small request).
    Raises `InputError` for a bad name or version, or when the version already exists.
    """
    import keras

    if not isinstance(model, keras.Model):
        from ssp_keras.inference.loading import load_generator

        model = load_generator(model)
    if not _MODEL_NAME_PATTERN.match(name or ""):
        raise InputError(f"invalid model name {name!r}: use letters, digits, '_', '-' and '.'")
    model_dir = os.path.join(base_dir, name)
    if version is None:
        version = next_version(model_dir)
    elif isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InputError(f"invalid version {version!r}: must be a positive integer")
    final_path = os.path.join(model_dir, str(version))
    if os.path.exists(final_path):
        raise InputError(
            f"version {version} of model '{name}' already exists at '{final_path}'; "
            "leave out --version to write the next one"
        )
    os.makedirs(model_dir, exist_ok=True)

    # Hidden, non-integer sibling: TF Serving only loads integer-named folders.
    staging = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_dir)
    try:
        write_signatures(model, staging)
        if warmup:
            write_warmup_requests(staging, name, channels=_channels(model))
        if os.path.exists(final_path):  # another export took this version meanwhile
            raise InputError(f"version {version} of model '{name}' appeared at '{final_path}' during the export")
        os.rename(staging, final_path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(final_path, name, version)


def _channels(model) -> int:
    from ssp_keras.inference.enhance import model_channels

    return model_channels(model)


def write_signatures(model, path: str) -> None:
    """Writes the SavedModel itself (variables + the three signatures) into the folder ``path``."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    # serving_default first: ExportArchive aliases the first endpoint, but it is named anyway.
    for signature, (function, input_signature) in serving_functions(model).items():
        archive.add_endpoint(signature, function, input_signature=input_signature)
    archive.write_out(path, verbose=False)


def write_warmup_requests(path: str, name: str, channels: int) -> None:
    """``assets.extra/tf_serving_warmup_requests``: one ``serving_default`` request, mid-grey."""
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=name, signature_name=SIGNATURE_UINT8)
    )
    image = np.full((1, WARMUP_SIZE, WARMUP_SIZE, channels), 128, dtype=np.uint8)
    request.inputs[INPUT_IMAGES].CopyFrom(tf.make_tensor_proto(image))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    warmup_path = os.path.join(path, WARMUP_FILE)
    os.makedirs(os.path.dirname(warmup_path), exist_ok=True)
    with tf.io.TFRecordWriter(warmup_path) as writer:
        writer.write(log.SerializeToString())
