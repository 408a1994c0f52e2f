"""The training input pipeline: two independent `tf.data` streams of random crops (SPEC 4-5).

`make_unpaired_dataset` yields ``(lq, hq)`` batches, float32 ``[B, S, S, C]`` in [0, 1]. LQ and HQ
are unpaired, so each stream is shuffled, repeated, cropped and augmented on its own, with its own
seeds, and the two are zipped at the end::

    files -> decode (parallel; cached in memory when it fits) -> shuffle (own seed, reshuffled
    every pass) -> repeat -> resize up if smaller than S -> random S x S crop -> batch
    -> flips / brightness / contrast (Keras preprocessing layers, clipping to [0, 1])
    -> LQ only: random smooth shading (``data.lq_shading``, see `random_shading`), then random
       sensor noise (``data.lq_noise``, see `random_noise`)

then ``zip(lq, hq).prefetch(AUTOTUNE)``. With ``synthetic_scenes`` (``loss.synthetic_restoration``) a
third stream of paired synthetic scenes joins them, ``(lq, hq, (shaded, clean))``: clean crops
rendered on the fly (`ssp_keras.data.synthetic.render_training_crop`, seeded by position), and the
same crops shaded as the LQ crops are (``data.lq_shading``); the model degrades the shaded ones
further and asks G to give back the clean ones.

Decoding goes through `ssp_keras.data.reading.read_image` in a ``tf.numpy_function``, so every format
the project reads (TIFF, DICOM, 16-bit PNG...) works here too. It is not slower than TensorFlow's
native decoders here: on the 57 corneal 384x384 JPEGs, to one gray channel, 2 CPU cores, it decoded
378 images/s against 263 for ``tf.io.decode_image`` (+ luma), and 290 against 349 on the same
frames as gray PNG. Decoded images are kept as uint16 (exact for 8- and 16-bit sources, half the
memory of float32) until after the cache.

Determinism: for a given ``seed`` the batches are identical run to run. Crops use stateless random
ops keyed by the element's position; the Keras augmentation layers carry their own seeded state
and run sequentially on whole batches, so the order in which they draw never depends on thread
timing. Different seeds give different batches.

Distribution: the result works with ``strategy.experimental_distribute_dataset(ds)`` (then
``batch_size`` is the global batch). Multi-worker training can pass ``shard=(num_workers, index)``
(or use ``distribute_datasets_from_function`` with the input context's pipeline count and id and
the per-replica batch): each worker then sees its own subset of files, and tf.data's auto-sharding
is switched off so it does not shard a second time.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow.experimental.numpy as tnp

from ssp_keras.config import DataConfig
from ssp_keras.data.reading import read_image, read_image_shape
from ssp_keras.errors import InputError
from ssp_keras.utils.shading import SHADING_DRAWS, shading_field

logger = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE

# Decoded images are cached as uint16: 8-bit values map exactly (k * 257) and back.
_CACHE_SCALE = 65535.0
_CACHE_BYTES_PER_SAMPLE = 2
# Estimating the decoded size reads at most this many headers per stream.
_SIZE_SAMPLE = 32


@dataclasses.dataclass(frozen=True)
class _StreamSeeds:
    """Independent seeds for each random step of one stream (derived from the user's seed)."""

    shuffle: int
    crop: int
    flip_horizontal: int
    flip_vertical: int
    brightness: int
    contrast: int
    shading: int
    noise: int

    @classmethod
    def derive(cls, seed: int, stream: int, shard_index: int) -> "_StreamSeeds":
        # SeedSequence mixes (seed, stream, shard) so LQ and HQ, and different workers, never
        # share a random sequence, while the same arguments always give the same seeds.
        state = np.random.SeedSequence([seed & 0xFFFFFFFF, stream, shard_index]).generate_state(8)
        return cls(*(int(value) & 0x7FFFFFFF for value in state))


# ----------------------------------------------------------------------------- public API
def make_unpaired_dataset(
    lq_files: Sequence[str],
    hq_files: Sequence[str],
    data_config: DataConfig,
    batch_size: int,
    seed: int,
    repeat: bool = True,
    augment: bool = True,
    shard: Optional[Tuple[int, int]] = None,
    synthetic_scenes: bool = False,
) -> tf.data.Dataset:
    """Two independent streams of random crops, zipped: ``(lq, hq)`` float32 ``[B, S, S, C]``.

    lq_files, hq_files: image paths, already checked with `ssp_keras.data.listing.scan_images`.
    data_config: ``image_size`` (S, crop side), ``channels`` (C), ``flip``,
      ``brightness_jitter``, ``contrast_jitter``, ``cache`` and ``cache_limit_mb``.
    batch_size: images per domain in each element (B); the global batch when the caller uses
      ``strategy.experimental_distribute_dataset``. Incomplete batches are dropped.
    seed: makes shuffling, crops and augmentation reproducible.
    repeat: repeat each stream forever (training); False gives one shuffled pass, ending with
      the shorter stream.
    augment: apply flips and brightness/contrast jitter (as configured in ``data_config``).
    shard: ``(num_shards, index)``: keep every num_shards-th file starting at index, per stream,
      before caching, so each worker reads different images.
    synthetic_scenes: add a third element, ``(shaded, clean)`` paired synthetic scenes of the same
      shape (`_synthetic_stream`); each worker renders its own.
    """
    _check_batch_size(batch_size)
    streams = {"LQ": list(lq_files), "HQ": list(hq_files)}
    for name, files in streams.items():
        if not files:
            raise InputError(f"no {name} images to train on")
    shard_index = 0
    if shard is not None:
        num_shards, shard_index = _check_shard(shard)
        streams = {name: _shard_files(name, files, num_shards, shard_index) for name, files in streams.items()}
    if not repeat:
        for name, files in streams.items():
            if len(files) < batch_size:
                raise InputError(
                    f"only {len(files)} {name} images for a batch of {batch_size}: "
                    "with repeat=False no complete batch can be made"
                )
    cache_flags = decide_cache(list(streams.values()), data_config)
    datasets = [
        _training_stream(
            files,
            data_config,
            batch_size,
            _StreamSeeds.derive(seed, stream_index, shard_index),
            cache=cache,
            repeat=repeat,
            augment=augment,
            # Shading and noise are degradations: planted on LQ crops only, never on the HQ targets.
            shading=data_config.lq_shading if stream_index == 0 else 0.0,
            noise=data_config.lq_noise if stream_index == 0 else 0.0,
        )
        for stream_index, (files, cache) in enumerate(zip(streams.values(), cache_flags))
    ]
    if synthetic_scenes:
        datasets.append(_synthetic_stream(data_config, batch_size, _StreamSeeds.derive(seed, 2, shard_index)))
    dataset = tf.data.Dataset.zip(tuple(datasets)).prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    if shard is not None:  # already sharded by file: tf.distribute must not shard again
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)


def make_eval_dataset(files: Sequence[str], channels: int, with_paths: bool = False) -> tf.data.Dataset:
    """Whole images in file order, for evaluation and previews (no crop, no batch).

    Yields float32 ``[H, W, C]`` in [0, 1] (sizes may differ between files), or
    ``(path, image)`` when ``with_paths`` is true.
    """
    files = list(files)
    if not files:
        raise InputError("no images to evaluate")
    paths = tf.data.Dataset.from_tensor_slices(files)
    decode = _decoder(channels, quantise=False)  # nothing is cached: keep full float precision

    def load(path):
        image = decode(path)
        return (path, image) if with_paths else image

    return paths.map(load, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def decide_cache(streams: Sequence[Sequence[str]], data_config: DataConfig) -> List[bool]:
    """Whether to keep each stream's decoded images in memory.

    ``data_config.cache`` True/False applies to every stream. ``None`` estimates each stream's
    decoded size (`estimate_cache_bytes`) and caches streams, smallest first, while the total stays
    within ``data_config.cache_limit_mb``.
    """
    if data_config.cache is not None:
        return [bool(data_config.cache)] * len(streams)
    budget = data_config.cache_limit_mb * 2**20
    sizes = [estimate_cache_bytes(files, data_config.channels) for files in streams]
    flags = [False] * len(streams)
    for index in sorted(range(len(streams)), key=lambda item: sizes[item]):
        if sizes[index] <= budget:
            flags[index] = True
            budget -= sizes[index]
    logger.info(
        "caching decoded images: %s (estimated %s MB, limit %d MB)",
        ", ".join(f"stream {index}: {'yes' if flag else 'no'}" for index, flag in enumerate(flags)),
        " + ".join(f"{size / 2**20:.0f}" for size in sizes),
        data_config.cache_limit_mb,
    )
    return flags


def estimate_cache_bytes(files: Sequence[str], channels: int) -> int:
    """Memory the decoded images of ``files`` take in the cache, from a sample of file headers."""
    files = list(files)
    if not files:
        return 0
    step = max(1, len(files) // _SIZE_SAMPLE)
    sample = files[::step][:_SIZE_SAMPLE]
    pixels = [height * width for height, width, _ in (read_image_shape(path) for path in sample)]
    return int(np.mean(pixels) * len(files) * channels * _CACHE_BYTES_PER_SAMPLE)


# ----------------------------------------------------------------------------- one stream
def _training_stream(
    files: List[str],
    data_config: DataConfig,
    batch_size: int,
    seeds: _StreamSeeds,
    cache: bool,
    repeat: bool,
    augment: bool,
    shading: float = 0.0,
    noise: float = 0.0,
) -> tf.data.Dataset:
    """One domain: ``[B, S, S, C]`` float32 batches in [0, 1]."""
    decode = _decoder(data_config.channels)
    paths = tf.data.Dataset.from_tensor_slices(files)
    if cache:
        # decode once, then shuffle the decoded images (the shuffle buffer shares their memory)
        images = paths.map(decode, num_parallel_calls=AUTOTUNE).cache()
        images = _shuffle_and_repeat(images, len(files), seeds.shuffle, repeat)
    else:
        # shuffle the names, not the pixels: the buffer then costs nothing
        paths = _shuffle_and_repeat(paths, len(files), seeds.shuffle, repeat)
        images = paths.map(decode, num_parallel_calls=AUTOTUNE)

    crop = _random_cropper(data_config.image_size, data_config.channels, seeds.crop)
    indexed = tf.data.Dataset.zip((images, tf.data.Dataset.counter()))
    crops = indexed.map(crop, num_parallel_calls=AUTOTUNE)
    batches = crops.batch(batch_size, drop_remainder=True)
    if augment:
        augmenter = _Augmenter(data_config, seeds)
        if augmenter.layers:
            # sequential on purpose: the layers' seeded state must advance in batch order
            batches = batches.map(augmenter)
        for degrade, strength, seed in ((random_shading, shading, seeds.shading), (random_noise, noise, seeds.noise)):
            if strength > 0:
                batches = _degraded(batches, degrade, strength, seed)
    return batches


def _synthetic_stream(data_config: DataConfig, batch_size: int, seeds: _StreamSeeds) -> tf.data.Dataset:
    """Paired synthetic scenes: ``(shaded, clean)`` float32 ``[B, S, S, C]`` batches in [0, 1].

    Scene i is rendered from ``(seeds.crop, i)`` alone (`render_training_crop`, about 5 ms at
    256 px), so parallel rendering cannot change it; ``shaded`` is it under the LQ stream's random
    shading (``data.lq_shading``, seeded by batch), ``clean`` the scene itself.
    """
    from ssp_keras.data.synthetic import render_training_crop

    size, channels = data_config.image_size, data_config.channels

    def render(index):
        return render_training_crop(np.random.default_rng([seeds.crop, int(index)]), size, channels)

    def scene(index):
        image = tf.numpy_function(render, [index], tf.float32, stateful=False)
        return tf.ensure_shape(image, [size, size, channels])

    batches = tf.data.Dataset.counter().map(scene, num_parallel_calls=AUTOTUNE).batch(batch_size, drop_remainder=True)
    if data_config.lq_shading <= 0:
        return batches.map(lambda clean: (clean, clean))
    return _degraded(batches, lambda clean, strength, seed: (random_shading(clean, strength, seed), clean),
                     data_config.lq_shading, seeds.shading)


def _degraded(batches: tf.data.Dataset, degrade, strength: float, seed: int) -> tf.data.Dataset:
    """Applies ``degrade(batch, strength, [seed, batch index])``: stateless, so parallel maps agree."""
    indexed_batches = tf.data.Dataset.zip((batches, tf.data.Dataset.counter()))
    return indexed_batches.map(
        lambda batch, index: degrade(batch, strength, tf.stack([tf.constant(seed, tf.int64), index])),
        num_parallel_calls=AUTOTUNE,
    )


def random_shading(batch: tf.Tensor, strength: float, seed: tf.Tensor) -> tf.Tensor:
    """Multiplies each image of ``[B, H, W, C]`` by its own smooth illumination field
    (`ssp_keras.utils.shading.shading_field`: an off-centre vignette times a ramp, maximum 1).

    Stateless: the same ``seed`` (``[2]`` int64) always gives the same fields. Returns float32
    in [0, 1].
    """
    shape = tf.shape(batch)
    draws = tf.random.stateless_uniform([shape[0], SHADING_DRAWS], seed=seed)
    rows, cols = tf.linspace(-1.0, 1.0, shape[1]), tf.linspace(-1.0, 1.0, shape[2])
    field = shading_field(draws, rows, cols, strength, tnp)
    return tf.clip_by_value(tf.cast(batch, tf.float32) * field[:, :, :, None], 0.0, 1.0)


def random_noise(batch: tf.Tensor, strength: float, seed: tf.Tensor) -> tf.Tensor:
    """Adds signal-dependent Gaussian noise to each image of ``[B, H, W, C]``.

    Image i gets ``n * sigma_i * sqrt(2 x)`` with n ~ N(0, 1) per pixel and sigma_i ~ U(0, strength):
    a Poisson-like (shot-noise) model whose standard deviation is sigma_i at mid-grey and smaller in
    the dark, as in a photon-limited confocal frame. Stateless: the same ``seed`` (``[2]`` int64)
    gives the same noise. Returns float32 in [0, 1].
    """
    batch = tf.cast(batch, tf.float32)
    count = tf.shape(batch)[0]
    noise_seed, level_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    sigma = tf.random.stateless_uniform([count, 1, 1, 1], seed=level_seed) * strength
    noise = tf.random.stateless_normal(tf.shape(batch), seed=noise_seed)
    return tf.clip_by_value(batch + noise * sigma * tf.sqrt(2.0 * batch), 0.0, 1.0)


def _shuffle_and_repeat(dataset: tf.data.Dataset, count: int, seed: int, repeat: bool) -> tf.data.Dataset:
    dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    return dataset.repeat() if repeat else dataset


def _decoder(channels: int, quantise: bool = True):
    """A tf function: file path (scalar string) -> ``[H, W, channels]``.

    quantise: uint16 (the cache's dtype; `_from_cache_dtype` turns it into [0, 1] floats), or
      float32 in [0, 1] straight from `read_image`.
    """
    dtype = tf.uint16 if quantise else tf.float32

    def decode_file(path: bytes) -> np.ndarray:
        image = read_image(path.decode("utf-8"), channels)
        return np.round(image * _CACHE_SCALE).astype(np.uint16) if quantise else image

    def decode(path: tf.Tensor) -> tf.Tensor:
        image = tf.numpy_function(decode_file, [path], dtype, stateful=False)
        image.set_shape([None, None, channels])
        return image

    return decode


def _from_cache_dtype(image: tf.Tensor) -> tf.Tensor:
    return tf.cast(image, tf.float32) / _CACHE_SCALE


def _random_cropper(size: int, channels: int, seed: int):
    """A tf function: (uint16 image, element index) -> float32 ``[size, size, channels]``.

    Images with a side shorter than ``size`` are first resized up (bilinear, aspect kept) so the
    short side equals ``size``. The crop position is a stateless function of (seed, index), so
    parallel calls cannot change the result.
    """

    def crop(image: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        image = _from_cache_dtype(image)
        image_size = tf.shape(image)[:2]
        short_side = tf.reduce_min(image_size)

        def resize_up():
            scale = tf.cast(size, tf.float32) / tf.cast(short_side, tf.float32)
            new_size = tf.cast(tf.math.ceil(tf.cast(image_size, tf.float32) * scale), tf.int32)
            return tf.image.resize(image, tf.maximum(new_size, size), method="bilinear")

        image = tf.cond(short_side < size, resize_up, lambda: image)
        crop_seed = tf.stack([tf.constant(seed, tf.int64), index])
        cropped = tf.image.stateless_random_crop(image, [size, size, channels], seed=crop_seed)
        return tf.clip_by_value(cropped, 0.0, 1.0)

    return crop


class _Augmenter:
    """Flips and brightness/contrast jitter with Keras 3 preprocessing layers, on whole batches.

    Keras' ``RandomFlip("horizontal_and_vertical")`` draws one coin for both axes (so it only ever
    rotates by 180 degrees); two single-axis layers give all four flip combinations. Layers are
    float32 whatever the global mixed-precision policy, so the pipeline always yields float32.
    """

    def __init__(self, data_config: DataConfig, seeds: _StreamSeeds):
        import keras

        self.layers = []
        if data_config.flip:
            self.layers += [
                keras.layers.RandomFlip("horizontal", seed=seeds.flip_horizontal, dtype="float32"),
                keras.layers.RandomFlip("vertical", seed=seeds.flip_vertical, dtype="float32"),
            ]
        if data_config.brightness_jitter > 0:
            self.layers.append(
                keras.layers.RandomBrightness(
                    data_config.brightness_jitter, value_range=(0.0, 1.0), seed=seeds.brightness,
                    dtype="float32",
                )
            )
        if data_config.contrast_jitter > 0:
            self.layers.append(
                keras.layers.RandomContrast(
                    data_config.contrast_jitter, value_range=(0.0, 1.0), seed=seeds.contrast,
                    dtype="float32",
                )
            )

    def __call__(self, batch: tf.Tensor) -> tf.Tensor:
        for layer in self.layers:
            batch = layer(batch, training=True)
        # flips keep the range and the jitter layers clip to their value_range (0, 1) themselves
        return batch


# ----------------------------------------------------------------------------- checks
def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def _check_shard(shard: Tuple[int, int]) -> Tuple[int, int]:
    try:
        num_shards, index = (int(value) for value in shard)
    except (TypeError, ValueError):
        raise ValueError(f"shard must be (num_shards, index), got {shard!r}") from None
    if num_shards < 1 or not 0 <= index < num_shards:
        raise ValueError(f"shard index must be in [0, num_shards), got {shard!r}")
    return num_shards, index


def _shard_files(name: str, files: List[str], num_shards: int, index: int) -> List[str]:
    subset = files[index::num_shards]
    if not subset:
        raise InputError(
            f"{name} has {len(files)} images, fewer than the {num_shards} input shards: "
            f"shard {index} would be empty"
        )
    return subset
