"""Exporting a generator as a SavedModel for TensorFlow Serving (SPEC section 7).

Layout: ``<base>/<name>/<version>/`` with an integer version, which is what
``tensorflow_model_server --model_base_path=<base>/<name>`` polls. A version is built in a hidden
temporary sibling (``<base>/<name>/.tmp-<pid>-<host>-v<version>-XXXX``, a name the server ignores
because it is not an integer) and renamed into place when complete (with the permissions the umask
gives a new folder, so a server running as another user can read it), so a polling server never
loads half a model. One export at a time owns a model folder (`ssp_keras.utils.locks.claim_folder`);
staging folders left by an export that was killed (``kill -9``, power loss) are removed by the next
export into the same model folder, once their process is gone
(`ssp_keras.utils.files.remove_stale_temporaries`). Existing versions are never overwritten; a
version that cannot be written completely (a full disk) is not published at all.

Signatures (all with free N, H and W; C is the generator's channel count):

* ``serving_default``: ``images`` uint8 ``[N, H, W, C]`` -> ``enhanced`` uint8 ``[N, H, W, C]``;
* ``enhance_float``: ``images`` float32 ``[N, H, W, C]`` in [0, 1] -> ``enhanced`` float32, same
  shape, in [0, 1];
* ``enhance_png``: ``image_bytes`` string ``[N]`` of encoded PNG/JPEG/BMP/GIF (REST clients send
  ``{"b64": ...}``; the ``_bytes`` suffix tells TF Serving's REST API to base64 it) ->
  ``png_bytes`` string ``[N]``; each image may have its own size. 16-bit PNGs come back as 16-bit
  PNGs, everything else as 8-bit PNGs. Channels are converted as ``ssp_keras.data.reading`` does when
  reading files: alpha dropped, BT.601 luma for colour into a gray model, gray replicated for RGB.

Two more serve clients that send a large image in tiles (``ssp-net predict``), so that every tile is
normalised with the whole image's statistics, as local tiled inference does
(`ssp_keras.inference.enhance.image_statistics`):

* ``image_statistics``: ``images`` float32 ``[N, H, W, C]`` (the whole image, downscaled to at most
  about 4 megapixels) -> ``statistics`` float32 ``[N, S]``: every instance-normalisation layer's
  mean and variance, flattened (`statistics_layout` fixes the order; S = 0 for a model without
  instance normalisation);
* ``enhance_with_statistics``: ``images`` float32 ``[N, h, w, C]`` (tiles) and ``statistics``
  float32 ``[N, S]`` -> ``enhanced`` float32, every layer normalised with the given statistics;
* ``enhance_uint8_with_statistics``: the same for uint8 tiles and results (what ``serving_default``
  is to ``enhance_float``: a quarter of the bytes, far fewer characters of REST JSON).

Every signature pads and crops with `ssp_keras.inference.enhance.enhance_tensor`, the same
function ``ssp-net enhance`` runs, so served and local results agree (to one grey level after
8-bit quantisation). Undecodable bytes, wrong dtypes or ranks are rejected by the graph with
INVALID_ARGUMENT.

Limits (set at export, ``ssp-net export --max-pixels N --max-batch N``): every signature checks,
before any convolution runs, that a request holds 1 to ``max_batch`` images and that no image has
more than ``max_pixels`` pixels (H * W), and answers INVALID_ARGUMENT with a message naming the
limit otherwise -- a request that only *claims* a huge shape (a tensor proto without content,
which the server zero-fills) is refused as fast as any other bad input. ``enhance_png`` checks the
size an image's header declares (PNG, JPEG, GIF, BMP) before decoding it, and the decoded size
after. The limits are stored in the version as ``assets.extra/ssp_net_limits.json``
(`read_limits`), beside TF Serving's warm-up file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
from typing import Optional

from ssp_keras.errors import InputError, OutputError
from ssp_keras.utils.files import atomic_write_bytes, make_staging_dir, publish_staging_dir

DEFAULT_MODEL_NAME = "ssp_net"
SIGNATURE_UINT8 = "serving_default"
SIGNATURE_FLOAT = "enhance_float"
SIGNATURE_PNG = "enhance_png"
SIGNATURE_STATISTICS = "image_statistics"
SIGNATURE_WITH_STATISTICS = "enhance_with_statistics"
SIGNATURE_UINT8_WITH_STATISTICS = "enhance_uint8_with_statistics"
#: Every signature an export has (`serving_functions`), in the order it adds them.
SIGNATURES = (SIGNATURE_UINT8, SIGNATURE_FLOAT, SIGNATURE_PNG, SIGNATURE_STATISTICS, SIGNATURE_WITH_STATISTICS,
              SIGNATURE_UINT8_WITH_STATISTICS)
INPUT_IMAGES = "images"
INPUT_IMAGE_BYTES = "image_bytes"
INPUT_STATISTICS = "statistics"
OUTPUT_ENHANCED = "enhanced"
OUTPUT_PNG_BYTES = "png_bytes"
OUTPUT_STATISTICS = "statistics"
#: TF Serving replays these requests when it loads a version (``assets.extra`` is its convention).
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
#: Side of the image in the warm-up request (small: shapes are dynamic, nothing compiles per size).
WARMUP_SIZE = 64
#: Largest image a request may hold by default, in pixels (H * W): 8192 x 8192 (64 Mi pixels).
#: Clients send larger images as tiles (`ssp_keras.serving.client` tiles above 4 megapixels).
DEFAULT_MAX_PIXELS = 8192 * 8192
#: Most images one request may hold by default.
DEFAULT_MAX_BATCH = 64
#: Where an export records its limits (JSON: ``{"max_pixels": ..., "max_batch": ...}``).
LIMITS_FILE = os.path.join("assets.extra", "ssp_net_limits.json")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """Where `export_saved_model` wrote: ``path`` = ``<base>/<name>/<version>``; the request
    limits built into its signatures; ``removed_staging``: stale staging folders cleaned up."""

    path: str
    name: str
    version: int
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_batch: int = DEFAULT_MAX_BATCH
    removed_staging: tuple = ()


def check_limits(max_pixels: int, max_batch: int) -> None:
    """`InputError` unless both limits are positive integers."""
    for flag, value in (("--max-pixels", max_pixels), ("--max-batch", max_batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{flag} must be a positive integer, got {value!r}")


def read_limits(version_path: str) -> dict:
    """``{"max_pixels": ..., "max_batch": ...}`` of an exported version (its `LIMITS_FILE`)."""
    with open(os.path.join(version_path, LIMITS_FILE), encoding="utf-8") as stream:
        return json.load(stream)


def _batch_checks(count, max_batch: int) -> list:
    """Assert ops: 1 <= ``count`` (images in the request) <= ``max_batch``."""
    import tensorflow as tf

    count = tf.cast(count, tf.int64)
    return [
        tf.debugging.Assert(
            count > 0, ["empty batch: the request holds no image (N = 0); send at least one image"]
        ),
        tf.debugging.Assert(count <= max_batch, [tf.strings.format(
            "batch of {} images exceeds the limit of this model, {} images per request "
            "(set at export with --max-batch); send fewer at a time", (count, tf.constant(max_batch, tf.int64)),
        )]),
    ]


def _size_checks(height, width, max_pixels: int, what: str = "image") -> list:
    """Assert ops: the ``height`` x ``width`` image has pixels, and at most ``max_pixels``."""
    import tensorflow as tf

    height, width = tf.cast(height, tf.int64), tf.cast(width, tf.int64)
    pixels = height * width
    return [
        tf.debugging.Assert(pixels > 0, [tf.strings.format(
            what + " has no pixels ({} x {})", (height, width))]),
        tf.debugging.Assert(pixels <= max_pixels, [tf.strings.format(
            what + " of {} x {} = {} pixels exceeds the limit of this model, {} pixels per image (set at "
            "export with --max-pixels); send it in tiles", (height, width, pixels, tf.constant(max_pixels, tf.int64)),
        )]),
    ]


def _guarded_images(images, max_pixels: int, max_batch: int):
    """``images`` [N, H, W, C], passed on only after the batch and size checks hold."""
    import tensorflow as tf

    shape = tf.shape(images, out_type=tf.int64)
    checks = _batch_checks(shape[0], max_batch) + _size_checks(shape[1], shape[2], max_pixels)
    with tf.control_dependencies(checks):
        return tf.identity(images)


def _header_size(data):
    """``(height, width)`` int64 that an encoded image's header declares (0, 0 if unknown).

    PNG (IHDR), GIF (logical screen), BMP (info or core header) are read from fixed offsets;
    JPEG through ``tf.io.extract_jpeg_shape`` (which scans to the frame header, decoding nothing).
    """
    import tensorflow as tf

    header = tf.strings.substr(data + b"\0" * 32, 0, 32)

    def unsigned(offset, length, big_endian):
        octets = tf.cast(tf.io.decode_raw(tf.strings.substr(header, offset, length), tf.uint8), tf.int64)
        weights = [256 ** (length - 1 - index if big_endian else index) for index in range(length)]
        return tf.reduce_sum(octets * tf.constant(weights, tf.int64))

    def signed32(offset):
        value = unsigned(offset, 4, big_endian=False)
        return tf.abs(tf.where(value >= 2**31, value - 2**32, value))  # BMP: negative = top-down

    is_png = tf.equal(tf.strings.substr(header, 0, 8), _PNG_SIGNATURE)
    is_gif = tf.equal(tf.strings.substr(header, 0, 4), b"GIF8")
    is_bmp = tf.equal(tf.strings.substr(header, 0, 2), b"BM")
    is_jpeg = tf.equal(tf.strings.substr(header, 0, 3), b"\xff\xd8\xff")
    bmp_core = tf.equal(unsigned(14, 4, big_endian=False), 12)  # OS/2 BITMAPCOREHEADER: 16-bit sizes
    bmp_height = tf.where(bmp_core, unsigned(20, 2, big_endian=False), signed32(22))
    bmp_width = tf.where(bmp_core, unsigned(18, 2, big_endian=False), signed32(18))
    jpeg = tf.cond(
        is_jpeg,
        lambda: tf.cast(tf.io.extract_jpeg_shape(data)[:2], tf.int64),
        lambda: tf.zeros([2], tf.int64),
    )
    zero = tf.constant(0, tf.int64)
    height = tf.where(is_png, unsigned(20, 4, True), tf.where(
        is_gif, unsigned(8, 2, False), tf.where(is_bmp, bmp_height, tf.where(is_jpeg, jpeg[0], zero))))
    width = tf.where(is_png, unsigned(16, 4, True), tf.where(
        is_gif, unsigned(6, 2, False), tf.where(is_bmp, bmp_width, tf.where(is_jpeg, jpeg[1], zero))))
    return height, width


def to_model_channels(image, channels: int):
    """A decoded ``[H, W, 1..4]`` image (gray, gray+alpha, RGB, RGBA) as ``[H, W, channels]``, in the graph.

    `ssp_keras.data.reading.convert_channels` is the reference (NumPy, for files read locally); this is
    its TensorFlow twin for the SavedModel's encoded-image signature, where the channel count is
    only known when the graph runs: alpha dropped, BT.601 luma for colour into a gray model, gray
    replicated for an RGB one. tests/test_export.py checks that the two agree.
    """
    import tensorflow as tf

    from ssp_keras.data.reading import LUMA_WEIGHTS

    have = tf.shape(image)[-1]
    colour = tf.cond(have >= 3, lambda: image[:, :, :3], lambda: tf.tile(image[:, :, :1], [1, 1, 3]))
    if channels == 3:
        return tf.ensure_shape(colour, [None, None, 3])
    luma = tf.clip_by_value(tf.reduce_sum(colour * LUMA_WEIGHTS, axis=-1, keepdims=True), 0.0, 1.0)
    gray = tf.cond(have >= 3, lambda: luma, lambda: image[:, :, :1])
    return tf.ensure_shape(gray, [None, None, 1])


def statistics_layout(model) -> list:
    """``[(layer name, channels)]`` of the instance-normalisation layers whose statistics the
    ``statistics`` tensors hold (for each, in this order: C means, then C variances)."""
    import tensorflow as tf

    from ssp_keras.inference.compiled import enhance_tensor, model_channels
    from ssp_keras.inference.tiling import PAD_MULTIPLE
    from ssp_keras.networks.layers import recorded_statistics

    with recorded_statistics() as recorded:
        enhance_tensor(model, tf.zeros([1, PAD_MULTIPLE, PAD_MULTIPLE, model_channels(model)]))
    return sorted((name, int(mean.shape[-1])) for name, (mean, _) in recorded.items())


def flatten_statistics(statistics: dict, layout: list, count):
    """``{layer: (mean, variance)}`` (each ``[N, 1, 1, C]``) as one float32 ``[N, S]`` tensor."""
    import tensorflow as tf

    parts = [tf.reshape(tf.cast(statistics[name][index], tf.float32), [count, channels])
             for name, channels in layout for index in (0, 1)]
    return tf.concat(parts, axis=1) if parts else tf.zeros([count, 0], tf.float32)


def unflatten_statistics(vector, layout: list) -> dict:
    """The inverse of `flatten_statistics`: ``[N, S]`` to ``{layer: (mean, variance)}``, ``[N, 1, 1, C]`` each."""
    import tensorflow as tf

    statistics, offset = {}, 0
    for name, channels in layout:
        mean = tf.reshape(vector[:, offset:offset + channels], [-1, 1, 1, channels])
        variance = tf.reshape(vector[:, offset + channels:offset + 2 * channels], [-1, 1, 1, channels])
        statistics[name] = (mean, variance)
        offset += 2 * channels
    return statistics


def serving_functions(model, max_pixels: int = DEFAULT_MAX_PIXELS, max_batch: int = DEFAULT_MAX_BATCH):
    """The signature functions of the module doc, as plain functions of TF tensors.

    max_pixels, max_batch: the request limits every signature checks first (module doc).
    Returns ``{signature_name: (function, [tf.TensorSpec])}``. Shared by the export and by tests
    that want to run a signature without writing a SavedModel.
    """
    import tensorflow as tf

    check_limits(max_pixels, max_batch)

    from ssp_keras.inference.compiled import enhance_tensor, model_channels

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
        images = _guarded_images(images, max_pixels, max_batch)
        enhanced = enhance_tensor(traceable, tf.cast(images, tf.float32) / 255.0)
        return {OUTPUT_ENHANCED: tf.cast(tf.round(enhanced * 255.0), tf.uint8)}

    def enhance_float(images):
        return {OUTPUT_ENHANCED: enhance_tensor(traceable, _guarded_images(images, max_pixels, max_batch))}

    def enhance_one_encoded(data):
        # 16-bit PNGs are decoded (and re-encoded) at 16 bits; the IHDR bit depth is byte 24.
        header = tf.strings.substr(data + b"\0" * 25, 0, 25)
        is_png16 = tf.logical_and(
            tf.equal(tf.strings.substr(header, 0, 8), _PNG_SIGNATURE),
            tf.equal(tf.strings.substr(header, 24, 1), b"\x10"),
        )
        # The size the header declares is checked before decoding: a small file may claim a huge image.
        claimed_height, claimed_width = _header_size(data)
        claimed_pixels = claimed_height * claimed_width
        with tf.control_dependencies([tf.debugging.Assert(claimed_pixels <= max_pixels, [tf.strings.format(
            "an image header declares {} x {} = {} pixels, more than the limit of this model, {} pixels "
            "per image (set at export with --max-pixels)",
            (claimed_height, claimed_width, claimed_pixels, tf.constant(max_pixels, tf.int64)),
        )])]):
            data = tf.identity(data)
        # channels=0 keeps the file's own (BMP and GIF decoders refuse 1); converted below.
        image = tf.cond(
            is_png16,
            lambda: tf.cast(tf.io.decode_png(data, channels=0, dtype=tf.uint16), tf.float32) / 65535.0,
            lambda: tf.cast(
                tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False), tf.float32
            ) / 255.0,
        )
        image = to_model_channels(image, channels)
        with tf.control_dependencies(_size_checks(tf.shape(image)[0], tf.shape(image)[1], max_pixels)):
            image = tf.identity(image)
        enhanced = enhance_tensor(traceable, image[tf.newaxis])[0]
        return tf.cond(
            is_png16,
            lambda: tf.io.encode_png(tf.cast(tf.round(enhanced * 65535.0), tf.uint16)),
            lambda: tf.io.encode_png(tf.cast(tf.round(enhanced * 255.0), tf.uint8)),
        )

    def enhance_png(image_bytes):
        with tf.control_dependencies(_batch_checks(tf.size(image_bytes), max_batch)):
            image_bytes = tf.identity(image_bytes)
        encoded = tf.map_fn(enhance_one_encoded, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string))
        return {OUTPUT_PNG_BYTES: encoded}

    # The statistics pair calls the model itself, not `network`: a normalisation layer reads the
    # recording/fixed scope while it is traced, and `network`'s one trace has none.
    from ssp_keras.networks.layers import fixed_statistics, recorded_statistics

    layout = statistics_layout(model)
    size = sum(2 * channels for _, channels in layout)

    def image_statistics(images):
        images = _guarded_images(images, max_pixels, max_batch)
        with recorded_statistics() as recorded:
            enhance_tensor(model, images)
        return {OUTPUT_STATISTICS: flatten_statistics(recorded, layout, tf.shape(images)[0])}

    def enhance_with(images, statistics):
        """``images`` float32 in [0, 1], enhanced with ``statistics``: float32 in [0, 1]."""
        expected = tf.stack([tf.shape(images)[0], size])
        with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(tf.equal(tf.shape(statistics), expected)), [
            tf.strings.format("statistics of shape {} do not fit this model, which needs [N, {}] (N images, from its "
                              "image_statistics signature)", (tf.shape(statistics), size))])]):
            statistics = tf.identity(statistics)
        with fixed_statistics(unflatten_statistics(statistics, layout)):
            return enhance_tensor(model, images)

    def enhance_with_statistics(images, statistics):
        return {OUTPUT_ENHANCED: enhance_with(_guarded_images(images, max_pixels, max_batch), statistics)}

    def enhance_uint8_with_statistics(images, statistics):
        images = tf.cast(_guarded_images(images, max_pixels, max_batch), tf.float32) / 255.0
        return {OUTPUT_ENHANCED: tf.cast(tf.round(enhance_with(images, statistics) * 255.0), tf.uint8)}

    images_shape = [None, None, None, channels]
    return {
        SIGNATURE_UINT8: (enhance_uint8, [tf.TensorSpec(images_shape, tf.uint8, name=INPUT_IMAGES)]),
        SIGNATURE_FLOAT: (enhance_float, [tf.TensorSpec(images_shape, tf.float32, name=INPUT_IMAGES)]),
        SIGNATURE_PNG: (enhance_png, [tf.TensorSpec([None], tf.string, name=INPUT_IMAGE_BYTES)]),
        SIGNATURE_STATISTICS: (image_statistics, [tf.TensorSpec(images_shape, tf.float32, name=INPUT_IMAGES)]),
        SIGNATURE_WITH_STATISTICS: (enhance_with_statistics, [
            tf.TensorSpec(images_shape, tf.float32, name=INPUT_IMAGES),
            tf.TensorSpec([None, size], tf.float32, name=INPUT_STATISTICS),
        ]),
        SIGNATURE_UINT8_WITH_STATISTICS: (enhance_uint8_with_statistics, [
            tf.TensorSpec(images_shape, tf.uint8, name=INPUT_IMAGES),
            tf.TensorSpec([None, size], tf.float32, name=INPUT_STATISTICS),
        ]),
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


def as_generator(model):
    """A Keras model as it is, or the generator that ``--model`` names (run folder, file, pretrained)."""
    import keras

    if isinstance(model, keras.Model):
        return model
    from ssp_keras.inference.loading import load_generator

    return load_generator(model)


def check_model_name(name: str) -> None:
    """`InputError` unless ``name`` is a model name TF Serving's layout can hold."""
    if not _MODEL_NAME_PATTERN.match(name or ""):
        raise InputError(f"invalid model name {name!r}: use letters, digits, '_', '-' and '.'")


def resolve_version_path(base_dir: str, name: str, version: Optional[int]):
    """``(model_dir, version, final_path)`` of a new export in TF Serving's layout.

    ``version`` None takes the next free integer. Raises `InputError` for a bad name or version,
    or when that version already exists (an export never replaces one).
    """
    check_model_name(name)
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
    return model_dir, version, final_path


@dataclasses.dataclass(frozen=True)
class PublishedVersion:
    """A version folder `publish_version` wrote, and the stale staging folders it removed first."""

    path: str
    version: int
    removed_staging: tuple = ()


def publish_version(base_dir: str, name: str, version: Optional[int], write_into, purpose: str) -> PublishedVersion:
    """Builds ``<base_dir>/<name>/<version>/`` with ``write_into(staging_folder)`` and publishes it.

    The model folder is claimed first (one export at a time; stale staging folders removed), the
    version resolved under that claim (`resolve_version_path`), the content written into a hidden
    staging folder and renamed into place only when complete. A write that fails for lack of space
    or permission raises `OutputError` naming the version; nothing of it stays behind.
    """
    from ssp_keras.utils.locks import claim_folder

    check_model_name(name)
    with claim_folder(os.path.join(base_dir, name), purpose, option="--base/--name") as claim:
        model_dir, version, final_path = resolve_version_path(base_dir, name, version)
        # Hidden, non-integer sibling: TF Serving only loads integer-named folders.
        staging = make_staging_dir(model_dir, f"v{version}")
        try:
            write_into(staging)
            if os.path.exists(final_path):  # another export took this version meanwhile
                raise InputError(f"version {version} of model '{name}' appeared at '{final_path}' during the export")
            publish_staging_dir(staging, final_path)
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)
            reason = _file_system_failure(error)
            if reason is None:
                raise
            raise OutputError(f"cannot write version {version} of model '{name}' into '{model_dir}': {reason}; "
                              "nothing was published (the partial version was removed)") from error
    return PublishedVersion(final_path, version, claim.removed)


def _file_system_failure(error: BaseException) -> Optional[str]:
    """What the file system said, when ``error`` is a failed write (OSError, or TensorFlow's own)."""
    if isinstance(error, OSError):
        return error.strerror or str(error)
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover
        return None
    if isinstance(error, (tf.errors.ResourceExhaustedError, tf.errors.PermissionDeniedError,
                          tf.errors.FailedPreconditionError, tf.errors.UnavailableError)):
        return " ".join(str(error.message).split())[:200]
    return None


def export_saved_model(
    model,
    base_dir: str,
    name: str = DEFAULT_MODEL_NAME,
    version: Optional[int] = None,
    warmup: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> ExportResult:
    """Writes ``model`` as ``<base_dir>/<name>/<version>/`` atomically; see the module doc.

    model: a generator (Keras model, ``[N, H, W, C]`` in [0, 1] -> same) or what ``--model``
      accepts (run folder, ``.keras`` file, pretrained name; see `ssp_keras.inference.loading`).
    version: a positive integer, or None for the next free one.
    warmup: also write ``assets.extra/tf_serving_warmup_requests`` (one small request).
    max_pixels, max_batch: request limits built into every signature (module doc), recorded in
      ``assets.extra/ssp_net_limits.json``.
    Staging folders that killed exports left in ``<base_dir>/<name>`` are removed first.
    Raises `InputError` for a bad name, version or limit, when the version already exists or
    another process exports into the same model folder; `OutputError` when the version cannot be
    written (a full disk).
    """
    check_limits(max_pixels, max_batch)
    resolve_version_path(base_dir, name, version)  # before the model loads (checked again when written)
    model = as_generator(model)

    def write_into(staging):
        write_signatures(model, staging, max_pixels=max_pixels, max_batch=max_batch)
        write_limits(staging, max_pixels=max_pixels, max_batch=max_batch)
        if warmup:
            write_warmup_requests(staging, name, channels=_channels(model), max_pixels=max_pixels)

    published = publish_version(base_dir, name, version, write_into, "ssp-net export")
    return ExportResult(published.path, name, published.version, max_pixels, max_batch, published.removed_staging)


def write_limits(path: str, max_pixels: int, max_batch: int) -> None:
    """``assets.extra/ssp_net_limits.json`` in the version folder ``path``."""
    limits_path = os.path.join(path, LIMITS_FILE)
    os.makedirs(os.path.dirname(limits_path), exist_ok=True)
    payload = {
        "max_pixels": max_pixels,
        "max_batch": max_batch,
        "checked_by": "every signature, before the network runs: INVALID_ARGUMENT when a request "
        "holds no image, more than max_batch images, or an image of more than max_pixels pixels (H*W)",
    }
    atomic_write_bytes(limits_path, (json.dumps(payload, indent=2) + "\n").encode("utf-8"))


def _channels(model) -> int:
    from ssp_keras.inference.compiled import model_channels

    return model_channels(model)


def write_signatures(
    model, path: str, max_pixels: int = DEFAULT_MAX_PIXELS, max_batch: int = DEFAULT_MAX_BATCH
) -> None:
    """Writes the SavedModel itself (variables + the three signatures) into the folder ``path``."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    # serving_default first: ExportArchive aliases the first endpoint, but it is named anyway.
    functions = serving_functions(model, max_pixels=max_pixels, max_batch=max_batch)
    for signature, (function, input_signature) in functions.items():
        archive.add_endpoint(signature, function, input_signature=input_signature)
    archive.write_out(path, verbose=False)


def write_warmup_requests(path: str, name: str, channels: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """``assets.extra/tf_serving_warmup_requests``: one ``serving_default`` request, mid-grey
    (`WARMUP_SIZE` square, smaller when ``max_pixels`` would refuse that)."""
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=name, signature_name=SIGNATURE_UINT8)
    )
    side = min(WARMUP_SIZE, math.isqrt(max_pixels))
    image = np.full((1, side, side, channels), 128, dtype=np.uint8)
    request.inputs[INPUT_IMAGES].CopyFrom(tf.make_tensor_proto(image))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    warmup_path = os.path.join(path, WARMUP_FILE)
    os.makedirs(os.path.dirname(warmup_path), exist_ok=True)
    with tf.io.TFRecordWriter(warmup_path) as writer:
        writer.write(log.SerializeToString())
