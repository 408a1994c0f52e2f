"""Enhancing arrays, files and folders of any size with a trained generator (SPEC section 2).

The generator only accepts heights and widths that are multiples of 32 (it downsamples five
times). Users never resize: `pad_to_multiple` pads the bottom and right edges by reflection up to
the next multiple, the generator runs, and `crop_to_size` cuts the padding off again. The same two
functions run inside the exported SavedModel (`ssp_keras.serving.export`), so a served model and
``ssp-net enhance`` compute the same thing.

Images larger than `AUTO_TILE_PIXELS` are enhanced tile by tile (`blend_tiles`): overlapping
tiles of one fixed shape (so the graph is traced once), each weighted by a raised-cosine ramp over
the overlap so seams do not show, summed, and divided by the summed weights. The weights are
separable, so the normaliser is two 1-D arrays and memory stays at about two copies of the image
(input and output) plus one tile's activations, whatever the image size.

Shapes and ranges: images are float32 ``[H, W, C]`` or ``[N, H, W, C]`` in [0, 1] (CONTRIBUTING.md);
results have the same shape, in [0, 1].

Tiled and whole-image results are not identical: near a tile's border the network sees less
context (mirrored instead of real), which is why tiles overlap and the ramp gives those border
pixels little weight. Instance normalisation (the default) makes the output depend on the
statistics of what the network sees, so every tile is normalised with the statistics of the
*whole* image (`image_statistics`): one pass over the whole image records each normalisation
layer's mean and variance, and the tiles reuse them. That pass runs at full resolution up to
`STATISTICS_PIXELS` and on a downscaled copy beyond (memory stays bounded), so tiles never differ
in tone; the remaining tiled-vs-whole difference is measured in ``tests/test_inference.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
import weakref
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Tuple

import numpy as np

from ssp_keras.data.samples import SIXTEEN_BIT_EXTENSIONS, output_bit_depth  # noqa: F401  (part of this API)
from ssp_keras.errors import InputError, OutputError

if TYPE_CHECKING:
    from ssp_keras.data.io import ImageInfo

logger = logging.getLogger(__name__)

#: The generator downsamples five times: inputs must be multiples of 2**5 (networks.generator).
from ssp_keras.defaults import GENERATOR_SIZE_MULTIPLE as PAD_MULTIPLE  # noqa: E402  (the generator's)
#: Images with more pixels than this are tiled automatically (about 4 megapixels).
AUTO_TILE_PIXELS = 2048 * 2048
#: Side of the square tiles used when tiling (a multiple of 32, so tiles need no padding).
DEFAULT_TILE_SIZE = 1024
#: Pixels shared by neighbouring tiles; the blending ramp spans this width.
DEFAULT_TILE_OVERLAP = 64
#: Largest image (pixels) whose normalisation statistics, when tiling, come from a full-resolution
#: pass; larger images are downscaled to this size for that pass.
STATISTICS_PIXELS = AUTO_TILE_PIXELS
#: Output extension for inputs whose format cannot be written (DICOM, GIF).
FALLBACK_EXTENSION = ".png"


# ------------------------------------------------------------------------------ pad and crop
def _reflect_indices(size, padded_size):
    """Source indices in ``[0, size)`` for positions ``[0, padded_size)`` (an int32 vector).

    Positions past the end are mirrored about the last sample without repeating it (``abcd|cba``,
    numpy's and TensorFlow's "reflect"). When the padding is longer than the image, the mirroring
    repeats (``ab|abab``), which is what ``np.pad(mode="reflect")`` does too; a 1-pixel side is
    repeated (edge padding), the only choice there. ``size`` and ``padded_size`` are ints, or
    scalar tensors in a shape-generic TensorFlow graph.
    """
    from keras import ops

    positions = ops.arange(padded_size, dtype="int32")
    period = ops.maximum(2 * (size - 1), 1)
    folded = positions % period
    return ops.where(folded < size, folded, period - folded)


def pad_to_multiple(images, multiple: int = PAD_MULTIPLE):
    """Reflect-pads the bottom and right edges of ``images`` up to multiples of ``multiple``.

    images: ``[N, H, W, C]`` tensor or array, any dtype, H and W >= 1 and possibly unknown at
      trace time (this runs inside the exported serving graph).
    Returns ``(padded [N, H', W', C], (H, W))`` with H', W' the next multiples of ``multiple``;
    ``(H, W)`` (ints, or scalar int32 tensors when unknown at trace time) for `crop_to_size`.

    Plain reflect padding needs padding < size, which fails for images smaller than the padding
    (a 5-pixel-high strip needs 27 rows); the gather in `_reflect_indices` mirrors repeatedly
    instead (numpy's behaviour), and equals ``tf.pad(mode="REFLECT")`` wherever that one works.
    """
    from keras import ops

    images = ops.convert_to_tensor(images)
    _, height, width, _ = ops.shape(images)
    padded_height = (height + multiple - 1) // multiple * multiple
    padded_width = (width + multiple - 1) // multiple * multiple
    images = ops.take(images, _reflect_indices(height, padded_height), axis=1)
    images = ops.take(images, _reflect_indices(width, padded_width), axis=2)
    return images, (height, width)


def crop_to_size(images, size):
    """``images[:, :H, :W, :]`` for ``size = (H, W)`` as returned by `pad_to_multiple`."""
    height, width = size
    return images[:, :height, :width, :]


def enhance_tensor(model, images):
    """The generator applied to images of any size, as backend ops (graph-safe).

    images: float ``[N, H, W, C]`` in [0, 1], any H and W. Returns float32 ``[N, H, W, C]`` in
    [0, 1]: pad to multiples of 32, run ``model`` in inference mode, crop, clip. This is the one
    function both local inference and every exported serving signature run.
    """
    from keras import ops

    padded, size = pad_to_multiple(ops.cast(images, "float32"))
    enhanced = ops.cast(model(padded, training=False), "float32")
    return ops.clip(crop_to_size(enhanced, size), 0.0, 1.0)


def _compile(model, function) -> Callable:
    """``function(*arrays)`` (which calls ``model``) compiled for the backend Keras runs on.

    TensorFlow: a ``tf.function`` with ``reduce_retracing`` (it generalises to
    ``[None, None, None, C]`` after the second distinct shape instead of tracing every image
    size). JAX: ``jax.jit`` of the function with the model's weights passed in (a
    `keras.StatelessScope`), traced once per input shape. Results are numpy arrays (pytrees of
    them); the returned function's ``compiled`` attribute is the backend's own compiled function.
    """
    import keras

    if keras.backend.backend() == "jax":
        import jax

        variables = model.trainable_variables + model.non_trainable_variables

        def stateless(values, *arrays):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return function(*arrays)

        compiled = jax.jit(stateless)

        def call(*arrays):
            return jax.tree.map(np.asarray, compiled([v.value for v in variables], *arrays))
    else:
        import tensorflow as tf

        compiled = tf.function(function, reduce_retracing=True)

        def call(*arrays):
            return tf.nest.map_structure(lambda value: value.numpy(), compiled(*arrays))

    call.compiled = compiled
    return call


# One compiled function per model.
_COMPILED = weakref.WeakKeyDictionary()


def _compiled(model) -> Callable:
    function = _COMPILED.get(model)
    if function is None:
        function = _compile(model, lambda images: enhance_tensor(model, images))
        _COMPILED[model] = function
    return function


_COMPILED_WITH_STATISTICS = weakref.WeakKeyDictionary()


def _compiled_with_statistics(model) -> Tuple[Callable, Callable]:
    """``(record, enhance_with)``: compiled functions that record a pass's normalisation statistics,
    and that enhance with given statistics instead of their own (see `image_statistics`)."""
    from ssp_keras.networks.layers import fixed_statistics, recorded_statistics

    functions = _COMPILED_WITH_STATISTICS.get(model)
    if functions is None:

        def record(images):
            with recorded_statistics() as statistics:
                enhance_tensor(model, images)
            return statistics

        def enhance_with(images, statistics):
            with fixed_statistics(statistics):
                return enhance_tensor(model, images)

        functions = (_compile(model, record), _compile(model, enhance_with))
        _COMPILED_WITH_STATISTICS[model] = functions
    return functions


def uses_instance_statistics(model) -> bool:
    """Whether ``model`` normalises with per-image statistics (`InstanceNormalization` anywhere)."""
    from ssp_keras.networks.layers import InstanceNormalization

    def layers(parent):  # nested models too (the generator's encoder is one)
        for layer in getattr(parent, "layers", ()):
            yield layer
            yield from layers(layer)

    return any(isinstance(layer, InstanceNormalization) for layer in layers(model))


def image_statistics(model, image: np.ndarray, max_pixels: Optional[int] = None) -> dict:
    """Every normalisation layer's mean and variance over the whole image ``[H, W, C]``.

    Up to ``max_pixels`` pixels (default `STATISTICS_PIXELS`) the image is used as it is; a larger
    one is first downscaled (area averaging) to about ``max_pixels``, so memory stays that of one
    image of that size.
    Returns ``{layer name: (mean, variance)}``, each ``[1, 1, 1, C_layer]``, for `enhance_array`.
    """
    record, _ = _compiled_with_statistics(model)
    return record(statistics_batch(image, max_pixels))


def statistics_batch(image: np.ndarray, max_pixels: Optional[int] = None):
    """The batch ``[1, h, w, C]`` (float32 array) whose normalisation statistics stand for the whole
    image ``[H, W, C]``: the image itself up to ``max_pixels`` (default `STATISTICS_PIXELS`), else
    an area-averaged copy of about that many pixels. Local tiling and the serving client (which
    sends it to a server's ``image_statistics`` signature) use the same one."""
    max_pixels = STATISTICS_PIXELS if max_pixels is None else max_pixels
    height, width = image.shape[:2]
    image = np.asarray(image, np.float32)
    if height * width > max_pixels:
        import cv2

        scale = (max_pixels / float(height * width)) ** 0.5
        size = (max(PAD_MULTIPLE, round(height * scale)), max(PAD_MULTIPLE, round(width * scale)))
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA).reshape(*size, image.shape[2])
    return image[None]


def model_channels(model) -> int:
    """Image channels a generator expects (``SSPGenerator.channels`` or its input shape)."""
    channels = getattr(model, "channels", None)
    if channels is None:
        shape = model.inputs[0].shape if getattr(model, "inputs", None) else None
        if shape is None or len(shape) != 4 or shape[-1] is None:
            raise InputError(f"model {getattr(model, 'name', model)!r} has no [N, H, W, C] image input")
        channels = int(shape[-1])
    return int(channels)


# ------------------------------------------------------------------------------ tiling
def tile_starts(length: int, tile: int, overlap: int) -> List[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``[0, length)`` with >= ``overlap`` shared.

    The last tile ends exactly at ``length`` (it may overlap its neighbour by more), so every tile
    has the same size and the graph is traced once. One tile when ``length <= tile``.
    """
    if length <= tile:
        return [0]
    stride = max(tile - overlap, 1)
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _ramp_weights(starts: Sequence[int], tile: int, length: int, overlap: int) -> List[np.ndarray]:
    """1-D blending weights of each tile along one axis: raised-cosine ramps over the overlaps.

    A side that touches the image border keeps weight 1 (nothing to blend with); a side shared
    with a neighbour rises from near 0 to 1 over ``overlap`` pixels. Weights are strictly
    positive, so the summed normaliser never divides by zero.
    """
    extent = min(tile, length)
    ramp_length = min(overlap, extent // 2)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_length, dtype=np.float64) + 0.5) / max(ramp_length, 1))
    weights = []
    for index, start in enumerate(starts):
        weight = np.ones(extent, dtype=np.float64)
        if ramp_length and index > 0:
            weight[:ramp_length] = ramp
        if ramp_length and index < len(starts) - 1:
            weight[extent - ramp_length:] = np.minimum(weight[extent - ramp_length:], ramp[::-1])
        weights.append(weight.astype(np.float32))
    return weights


def blend_tiles(
    image: np.ndarray,
    enhance_tile: Callable[[np.ndarray], np.ndarray],
    tile_size: int = DEFAULT_TILE_SIZE,
    overlap: int = DEFAULT_TILE_OVERLAP,
) -> np.ndarray:
    """Applies ``enhance_tile`` to overlapping tiles of ``image`` and blends the results.

    image: float32 ``[H, W, C]``. enhance_tile: maps float32 ``[h, w, C]`` to the same shape
      (local generator, or a remote server in `ssp_keras.serving.client`); every call gets the
      same ``(min(tile_size, H), min(tile_size, W))`` shape.
    Returns float32 ``[H, W, C]``. The output is accumulated in place; the normaliser is the outer
    product of two 1-D weight sums (the tile grid is regular), so no image-sized weight map exists.
    """
    if tile_size < 1 or not 0 <= overlap < tile_size:
        raise ValueError(f"need tile_size >= 1 and 0 <= overlap < tile_size, got {tile_size} and {overlap}")
    height, width, channels = image.shape
    row_starts = tile_starts(height, tile_size, overlap)
    column_starts = tile_starts(width, tile_size, overlap)
    row_weights = _ramp_weights(row_starts, tile_size, height, overlap)
    column_weights = _ramp_weights(column_starts, tile_size, width, overlap)
    tile_height, tile_width = min(tile_size, height), min(tile_size, width)

    output = np.zeros((height, width, channels), dtype=np.float32)
    row_sum = np.zeros(height, dtype=np.float32)
    column_sum = np.zeros(width, dtype=np.float32)
    for top, weight in zip(row_starts, row_weights):
        row_sum[top:top + tile_height] += weight
    for left, weight in zip(column_starts, column_weights):
        column_sum[left:left + tile_width] += weight

    for top, row_weight in zip(row_starts, row_weights):
        for left, column_weight in zip(column_starts, column_weights):
            tile = image[top:top + tile_height, left:left + tile_width]
            enhanced = np.asarray(enhance_tile(tile), dtype=np.float32)
            weight = (row_weight[:, None] * column_weight[None, :])[:, :, None]
            output[top:top + tile_height, left:left + tile_width] += enhanced * weight
    # Normalise one band of rows at a time: a full [H, W] normaliser would cost another image.
    for top in range(0, height, tile_height):
        band = slice(top, top + tile_height)
        output[band] /= (row_sum[band, None] * column_sum[None, :])[:, :, None]
    return np.clip(output, 0.0, 1.0, out=output)


# ------------------------------------------------------------------------------ arrays
def enhance_array(
    generator,
    image: np.ndarray,
    tile_size: Optional[int] = None,
    overlap: int = DEFAULT_TILE_OVERLAP,
) -> np.ndarray:
    """Enhances one image ``[H, W, C]`` (or ``[H, W]`` for C = 1) or a batch ``[N, H, W, C]``.

    image: float in [0, 1] (other floats are cast to float32), any H and W, C = the generator's
      channels.
    tile_size: None tiles automatically above `AUTO_TILE_PIXELS` with `DEFAULT_TILE_SIZE` tiles;
      an integer forces tiles of that size (0 disables tiling).
    overlap: pixels shared by neighbouring tiles (blended with a cosine ramp).
    Returns float32 of the input's shape, in [0, 1].
    """
    array = np.asarray(image, dtype=np.float32)
    gray_2d = array.ndim == 2
    if gray_2d:
        array = array[:, :, None]
    single = array.ndim == 3
    batch = array[None] if single else array
    channels = model_channels(generator)
    if batch.ndim != 4 or batch.shape[-1] != channels or min(batch.shape[1:3]) < 1:
        raise InputError(
            f"expected an image [H, W, {channels}] or a batch [N, H, W, {channels}] for this "
            f"{channels}-channel model, got shape {np.shape(image)}"
        )
    height, width = batch.shape[1:3]
    if tile_size is None:
        tile_size = DEFAULT_TILE_SIZE if height * width > AUTO_TILE_PIXELS else 0
    if tile_size and (height > tile_size or width > tile_size):
        result = np.stack([_enhance_tiled(generator, item, tile_size, overlap) for item in batch])
    else:
        result = _compiled(generator)(batch)
    if single:
        result = result[0]
    return result[:, :, 0] if gray_2d else result


def _enhance_tiled(generator, image: np.ndarray, tile_size: int, overlap: int) -> np.ndarray:
    """One image ``[H, W, C]`` tile by tile, every tile normalised like the whole image."""
    if uses_instance_statistics(generator):
        enhance_with = _compiled_with_statistics(generator)[1]
        statistics = image_statistics(generator, image)
        function = lambda tiles: enhance_with(tiles, statistics)  # noqa: E731
    else:
        function = _compiled(generator)
    return blend_tiles(image, lambda tile: function(tile[None])[0], tile_size, overlap)


# ------------------------------------------------------------------------------ files
#: What ``dicom_as`` may say DICOM inputs become: a derived DICOM (default) or PNG.
DICOM_OUTPUT_FORMATS = ("dicom", "png")


@dataclasses.dataclass
class FileJob:
    """One input file and where its result goes (``relative``: the name kept under --out).

    ``frame_destinations``: one file per frame, when a multi-frame input goes to a format that
    holds one frame (a multi-frame DICOM written as PNG); None otherwise.
    """

    source: str
    relative: str
    destination: str
    frame_destinations: Optional[List[str]] = None

    @property
    def outputs(self) -> List[str]:
        """Every file this job writes."""
        return list(self.frame_destinations or [self.destination])


@dataclasses.dataclass
class FilesResult:
    """What `enhance_files` did: ``written`` files, ``skipped`` (path, reason) pairs, ``frames``
    enhanced in all (a TIFF stack or multi-frame DICOM counts each of its frames)."""

    written: List[str]
    skipped: List[Tuple[str, str]]
    seconds: float
    frames: int = 0


def output_name(relative: str, dicom_as: str = "dicom") -> str:
    """The output name for an input's relative path: the same, or ``.png`` for GIF (and for DICOM
    with ``dicom_as="png"``)."""
    from ssp_keras.data.io import WRITE_EXTENSIONS

    base, extension = os.path.splitext(relative)
    if extension.lower() == ".dcm" and dicom_as == "dicom":
        return relative
    return relative if extension.lower() in WRITE_EXTENSIONS else base + FALLBACK_EXTENSION


def frame_file_names(destination: str, frames: int) -> List[str]:
    """``scan_frame001.png, scan_frame002.png, ...``: one name per frame of a multi-frame input."""
    base, extension = os.path.splitext(destination)
    width = max(3, len(str(frames)))
    return [f"{base}_frame{index:0{width}d}{extension}" for index in range(1, frames + 1)]


def plan_outputs(
    inputs: Sequence[str], out_dir: str, dicom_as: str = "dicom", overwrite: bool = False
) -> List[FileJob]:
    """Maps input files and folders onto files under ``out_dir``, refusing unsafe layouts.

    A file keeps its name (``out_dir/name``); a folder's images keep their path relative to the
    folder (``out_dir/sub/name``). DICOM stays DICOM, or with ``dicom_as="png"`` becomes PNG (one
    ``name_frameNNN.png`` per frame of a multi-frame file); GIF becomes PNG.
    Raises `InputError`, before anything is read or written, when an input does not exist, a folder
    has no image, ``out_dir`` is or lies inside an input folder, an output would be an input file
    (also through a link), two inputs would land on the same output, or -- unless ``overwrite`` --
    output files exist already (the message says how many). ``out_dir`` may lie in the folder of
    an input *file* (``cd scans && ssp-net enhance one.png --out results``).
    """
    from ssp_keras.data.io import dicom_frame_count, list_images
    from ssp_keras.utils.files import check_folder_creatable, check_output_location

    if dicom_as not in DICOM_OUTPUT_FORMATS:
        raise InputError(f"dicom_as must be one of {', '.join(DICOM_OUTPUT_FORMATS)}, got {dicom_as!r}")
    inputs = [os.fspath(item) for item in inputs]
    out_dir = os.fspath(out_dir)
    if not inputs:
        raise InputError("no input images or folders given")
    for item in inputs:
        if not os.path.exists(item):
            raise InputError(f"input not found: '{item}'")
    check_folder_creatable(out_dir, "--out")  # not a file, nor below one
    try:
        check_output_location(out_dir, inputs, allow_beside_files=True)
    except ValueError as error:
        raise InputError(str(error)) from None

    def job_for(path: str, relative: str) -> FileJob:
        relative = output_name(relative, dicom_as)
        destination = os.path.join(out_dir, relative)
        frames = dicom_frame_count(path) if path.lower().endswith(".dcm") and dicom_as == "png" else 1
        return FileJob(path, relative, destination, frame_file_names(destination, frames) if frames > 1 else None)

    jobs: List[FileJob] = []
    for item in inputs:
        if os.path.isdir(item):
            jobs.extend(job_for(path, os.path.relpath(path, item)) for path in list_images(item))
        else:
            jobs.append(job_for(item, os.path.basename(item)))

    sources = {os.path.realpath(job.source) for job in jobs}
    source_files = {_file_identity(job.source) for job in jobs} - {None}
    claimed = {}
    existing = []
    blocked_folders = functools.lru_cache(maxsize=None)(lambda folder: _file_in_the_way(folder, out_dir))
    for job in jobs:
        for output in job.outputs:
            target = os.path.realpath(output)
            if target in sources or _file_identity(output) in source_files:  # e.g. an input folder inside --out
                raise InputError(f"refusing to overwrite the input file '{job.source}': choose another --out")
            if target in claimed:
                raise InputError(
                    f"'{job.source}' and '{claimed[target]}' would both be written to '{output}'; "
                    "enhance them into different --out folders"
                )
            claimed[target] = job.source
            if os.path.isdir(output):
                raise InputError(f"cannot write '{output}' for '{job.source}': a folder of that name exists")
            blocked = blocked_folders(os.path.dirname(output))
            if blocked:
                raise InputError(f"cannot write '{output}' for '{job.source}': '{blocked}' is a file, not a folder")
            if os.path.lexists(output):
                existing.append(output)
    if existing and not overwrite:
        raise InputError(
            f"refusing to overwrite {len(existing)} existing file(s) in '{out_dir}' (first: '{existing[0]}'); "
            "pass --overwrite to replace them, or choose another --out"
        )
    return jobs


def _file_in_the_way(folder: str, root: str) -> Optional[str]:
    """The first path from ``folder`` up to ``root`` that exists but is not a folder (None: none)."""
    while True:
        if os.path.lexists(folder) and not os.path.isdir(folder):
            return folder
        if os.path.abspath(folder) == os.path.abspath(root) or os.path.dirname(folder) == folder:
            return None
        folder = os.path.dirname(folder)


def _file_identity(path: str):
    """``(device, inode)`` of an existing file (hard links share it), else None."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino)


def process_image_files(
    inputs: Sequence[str],
    out_dir: str,
    transform: Callable[[np.ndarray, "ImageInfo"], Tuple[np.ndarray, Optional[int]]],
    channels: Optional[int],
    progress: Optional[Callable[[str], None]] = None,
    dicom_as: str = "dicom",
    overwrite: bool = False,
    model_name: str = "SSP-Net",
    model_source: Optional[str] = None,
    purpose: str = "ssp-net enhance",
) -> FilesResult:
    """Reads every input image, applies ``transform`` to each frame and writes the results under ``out_dir``.

    The shared loop of `enhance_files` and of the serving client's ``predict_files``.
    transform: ``(frame float32 [H, W, C] in [0, 1], ImageInfo) -> (result [H, W, C], bit_depth)``
      where ``bit_depth`` None means "as the source had it": its own sample type and range where
      the output format holds it (float TIFF stays float, int32 TIFF int32 in its range,
      `ssp_keras.data.samples.output_sample_format`), else 16 or 8 bits (`output_bit_depth`). It
      is called once per frame: every page of a multi-page TIFF and every frame of a multi-frame
      DICOM is enhanced and written (a multi-page TIFF with the same page count and sample type,
      a multi-frame DICOM with the same NumberOfFrames).
    channels: read images with this many channels (1 or 3; None keeps the file's). A file whose
      colour is reduced (RGB, palette or CMYK into a gray model) or converted (CMYK into RGB) gets
      one warning naming it; an alpha channel is passed through unchanged, never enhanced.
    progress: called with one line per file (``[3/14] in.png -> out/in.png (0.21 s)``).
    dicom_as, overwrite: see `plan_outputs`. DICOM outputs are derived DICOMs
      (`ssp_keras.data.io.write_derived_dicom`) whose SeriesDescription names ``model_name``; the
      files of one source series share one new series. ``model_source`` (what ``--model`` said)
      goes into the DerivationDescription.
    purpose: what this process does, shown to another one that finds ``out_dir`` claimed
      (`ssp_keras.utils.locks.claim_folder`: one process at a time writes into a folder).
    Unreadable files are skipped with a warning naming them; `InputError` when none was readable;
    `OutputError` naming the file, the cause and what was written before, when an output cannot
    be written (a full disk): nothing half-written is left.
    """
    from ssp_keras.utils.locks import claim_folder

    plan_outputs(inputs, out_dir, dicom_as=dicom_as, overwrite=overwrite)  # before the folder is made
    with claim_folder(out_dir, purpose):
        jobs = plan_outputs(inputs, out_dir, dicom_as=dicom_as, overwrite=overwrite)  # again, as its owner
        return _process_jobs(jobs, out_dir, transform, channels, progress, model_name, model_source)


def _process_jobs(jobs, out_dir, transform, channels, progress, model_name, model_source) -> FilesResult:
    from ssp_keras.data.io import UnreadableImageError, read_frames_and_alpha

    started = time.perf_counter()
    written: List[str] = []
    skipped: List[Tuple[str, str]] = []
    series_uids: dict = {}  # source SeriesInstanceUID -> the derived series' UID
    total_frames = 0
    for number, job in enumerate(jobs, start=1):
        file_started = time.perf_counter()
        try:
            frames, alphas, info = read_frames_and_alpha(job.source, channels)
        except UnreadableImageError as error:
            logger.warning("skipping unreadable image '%s': %s", job.source, error.reason)
            skipped.append((job.source, error.reason))
            continue
        note = colour_note(job.source, info, channels)
        if note:
            logger.warning("%s", note)
        results: List[np.ndarray] = []
        bit_depth = None
        while frames:  # pop: each input frame is released once enhanced
            result, depth = transform(frames.pop(0), info)
            results.append(result)
            bit_depth = depth if bit_depth is None else bit_depth
        try:
            outputs = _write_results(job, results, alphas, info, bit_depth, model_name, model_source, series_uids)
        except OSError as error:
            raise OutputError(
                f"cannot write '{getattr(error, 'filename', None) or job.destination}': {error.strerror or error}; "
                f"{len(written)} of {len(jobs)} output file(s) were written into '{out_dir}' before it, none is "
                "half-written"
            ) from error
        written.extend(outputs)
        total_frames += len(results)
        if progress is not None:
            target = outputs[0] if len(outputs) == 1 else f"{outputs[0]} ... {os.path.basename(outputs[-1])}"
            frames_note = f"{len(results)} frames, " if len(results) > 1 else ""
            progress(
                f"[{number}/{len(jobs)}] {job.source} -> {target} "
                f"({frames_note}{time.perf_counter() - file_started:.2f} s)"
            )
    if skipped:
        logger.warning("skipped %d of %d files (named above)", len(skipped), len(jobs))
    if not written:
        raise InputError(f"no readable image among {len(jobs)} input file(s); first: '{skipped[0][0]}'")
    return FilesResult(written, skipped, time.perf_counter() - started, total_frames)


def _write_results(job, results, alphas, info, bit_depth, model_name, model_source, series_uids) -> List[str]:
    """Writes one input's results (with its alpha channels) where ``job`` says; the files written."""
    from ssp_keras import __version__
    from ssp_keras.data.io import write_derived_dicom, write_frames
    from ssp_keras.data.samples import SampleFormat, output_sample_format

    extension = os.path.splitext(job.destination)[1].lower()
    if extension == ".dcm":
        write_derived_dicom(
            job.destination,
            results,
            source=job.source,
            series_description=f"SSP-Net enhanced ({model_name})",
            derivation_description=(
                f"Enhanced with SSP-Net (ssp-keras {__version__}), model '{model_source or model_name}'; "
                "pixel values rescaled to the source's stored range"
            ),
            series_uid=series_uids,
        )
        return [job.destination]

    def sample_format(destination):
        if bit_depth is not None:
            return SampleFormat.of_bit_depth(bit_depth)
        if info.format == "dicom":  # (DICOM as PNG) its stored bits, not pydicom's float samples
            return SampleFormat.of_bit_depth(output_bit_depth(destination, info.bit_depth))
        return output_sample_format(destination, info.sample_format, info.bit_depth)

    if job.frame_destinations is not None and len(job.frame_destinations) == len(results):
        for path, result, alpha in zip(job.frame_destinations, results, alphas):
            write_frames(path, [result], sample_format=sample_format(path), alphas=[alpha])
        return list(job.frame_destinations)
    if len(results) > 1 and extension not in (".tif", ".tiff"):
        raise InputError(f"'{job.source}' has {len(results)} frames but '{job.destination}' holds one")
    write_frames(job.destination, results, sample_format=sample_format(job.destination), alphas=alphas)
    return [job.destination]


def colour_note(path: str, info: "ImageInfo", channels: Optional[int]) -> Optional[str]:
    """One line when the model's ``channels`` change what a file's colour is (None: no change).

    A gray model reduces colour (RGB, palette, CMYK...) to its BT.601 luma, and the output is gray;
    an RGB model converts CMYK and other colour models to RGB, and replicates gray. Gray stored as
    RGB (three equal channels) loses nothing and gets no note. An alpha channel is mentioned: it is
    passed through unchanged.
    """
    alpha = "; its alpha channel is passed through unchanged" if info.alpha else ""
    if channels == 1 and not info.gray_content:
        return (f"'{path}' is {info.colour} colour: the 1-channel model enhances its BT.601 luma and the output "
                f"is gray{alpha}")
    if channels == 3 and info.colour not in ("RGB", "gray"):
        return f"'{path}' is {info.colour}: converted to RGB for the 3-channel model; the output is RGB{alpha}"
    if channels == 3 and info.channels == 1:
        return f"'{path}' is gray: replicated to RGB for the 3-channel model; the output is RGB{alpha}"
    return None


def enhance_files(
    generator,
    inputs: Sequence[str],
    out_dir: str,
    tile_size: Optional[int] = None,
    overlap: int = DEFAULT_TILE_OVERLAP,
    progress: Optional[Callable[[str], None]] = None,
    dicom_as: str = "dicom",
    overwrite: bool = False,
    model_name: Optional[str] = None,
    model_source: Optional[str] = None,
) -> FilesResult:
    """Enhances image files and folders into ``out_dir``, keeping names, folders, frames and bit depth.

    inputs: files and/or folders (searched recursively, see ``data.io.list_images``).
    Names and relative folders are kept. Every frame of a stack is enhanced (`enhance_array` per
    frame): a multi-page TIFF gives a multi-page TIFF, a multi-frame DICOM a multi-frame DICOM.
    DICOM inputs give derived DICOMs (patient and study kept, a new series named after
    ``model_name``, default the generator's name), or PNG with ``dicom_as="png"``; GIF inputs give
    PNG. 16-bit (and 12-bit, float) inputs give 16-bit PNG/TIFF outputs, 8-bit inputs 8-bit
    outputs; DICOM keeps the source's stored bit depth. Colour files are converted to the
    generator's channels on reading (BT.601 luma for a gray model).
    Writes are atomic; ``out_dir`` may not be, or lie inside, an input folder, no output may be an
    input, and existing outputs are refused unless ``overwrite`` (`InputError` before anything is
    read, see `plan_outputs`). See `enhance_array` for ``tile_size``/``overlap``.
    """
    channels = model_channels(generator)

    def transform(image, info):
        return enhance_array(generator, image, tile_size=tile_size, overlap=overlap), None

    return process_image_files(
        inputs, out_dir, transform, channels, progress,
        dicom_as=dicom_as,
        overwrite=overwrite,
        model_name=model_name or getattr(generator, "name", None) or "generator",
        model_source=model_source,
    )


__all__ = [
    "AUTO_TILE_PIXELS",
    "DEFAULT_TILE_OVERLAP",
    "DEFAULT_TILE_SIZE",
    "PAD_MULTIPLE",
    "FilesResult",
    "blend_tiles",
    "crop_to_size",
    "enhance_array",
    "enhance_files",
    "enhance_tensor",
    "model_channels",
    "pad_to_multiple",
    "plan_outputs",
    "process_image_files",
    "tile_starts",
]
