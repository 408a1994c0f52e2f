"""Training SSP-Net from two folders of unpaired images, resumably.

`train` is what ``ssp-net train`` runs: it validates the images before any model is built,
chooses the distribution strategy, builds model, optimisers and metrics inside its scope,
restores the newest checkpoint of the run directory (so re-running the same command resumes,
also after a SIGKILL), and calls ``model.fit``.

A run directory holds::

    config.json        the resolved configuration (and, under "resolved", the replica count,
                       global batch and steps per epoch that this run used, and the warnings
                       about its training data, if any; under "training_data", its folders, file
                       counts and a fingerprint of the file lists)
    checkpoints/       state-epochNNNN.npz: weights and optimiser state after each epoch
    logs/              TensorBoard: losses, learning rates, image grids LQ | G(LQ) | HQ | G(HQ)
    previews/          the same grids as PNG
    history.csv        one row of losses per epoch
    generator.keras    the final generator

One process at a time trains in a run directory (`ssp_keras.utils.locks.claim_folder`; a second
is refused). Resuming restores the newest checkpoint and forgets what a killed process recorded
after it: history rows and previews of later epochs, temporary files. A resume with other
settings or other training images (another file list) is refused, naming what differs. Nothing
non-finite is ever saved: a NaN or Inf in a loss, a weight or an optimiser variable stops the run
before the epoch's checkpoint or the generator is written (`NonFiniteLossGuard`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
from typing import Optional, Sequence, Union

import keras
import numpy as np
import tensorflow as tf

from ssp_keras.config import SSPNetConfig
from ssp_keras.errors import InputError
from ssp_keras.utils.files import atomic_save, atomic_write_bytes

log = logging.getLogger(__name__)

#: Longer side of the preview frames (larger frames are scaled down for the image grid).
PREVIEW_MAX_SIDE = 512

PathList = Union[str, Sequence[str]]

#: Settings that may differ when a run resumes (dotted config keys): ``train.epochs`` extends the
#: run; the others change neither the model nor what it is trained on or how.
RESUMABLE_FIELDS = frozenset({
    "train.epochs", "train.image_grid_size", "train.jit_compile", "data.cache", "data.cache_limit_mb",
    "train.backend",  # checkpoints hold the same variables on TensorFlow and JAX (tested)
})
#: Differing settings named in the refusal to resume; the rest are counted.
_SHOWN_DIFFERENCES = 4


@dataclasses.dataclass
class TrainResult:
    """What a finished (or already complete) run left behind."""

    run_dir: str
    generator_path: Optional[str]
    initial_epoch: int
    epochs: int
    history: dict
    replicas: int
    global_batch_size: int
    steps_per_epoch: int
    skipped_files: list


def corn_folders(root: str) -> tuple[str, str]:
    """(LQ, HQ) training folders of a CORN-style root: ``trainA/`` (LQ) and ``trainB/`` (HQ)."""
    lq, hq = os.path.join(root, "trainA"), os.path.join(root, "trainB")
    for folder in (lq, hq):
        if not os.path.isdir(folder):
            raise InputError(f"'{root}' is not a CORN-style data root: missing folder '{folder}'")
    return lq, hq


@dataclasses.dataclass
class _TrainingData:
    """The image files of a run, found and checked before any model is built."""

    lq_files: list
    hq_files: list
    skipped_files: list
    warnings: list
    preview_files: Optional[tuple]
    record: dict  # `training_data_record`: what config.json keeps to recognise the data on resume


@dataclasses.dataclass
class _Run:
    """Where and how a run trains: its strategy and what follows from it."""

    run_dir: str
    out_dir: str  # run_dir on the chief; a private temporary folder on the other workers
    strategy: tf.distribute.Strategy
    replicas: int
    global_batch: int
    steps_per_epoch: int
    chief: bool


def train(
    config: SSPNetConfig,
    lq: PathList,
    hq: PathList,
    run_dir: str,
    verbose: Union[int, str] = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
    initial_generator: Optional[str] = None,
    preview: Optional[tuple] = None,
) -> TrainResult:
    """Trains (or resumes training of) SSP-Net on unpaired LQ and HQ images.

    Args:
        config: the run's configuration (``train.epochs`` is the total number of epochs).
        lq, hq: folders (searched recursively) and/or image files.
        run_dir: where checkpoints, logs and the final generator go; an existing run there resumes.
        verbose: Keras' progress output (``"auto"``, 0, 1 or 2).
        callbacks: extra Keras callbacks.
        initial_generator: start G from this generator (run folder, ``.keras`` file or pretrained
            name) instead of a random initialisation, to fine-tune it; ignored when the run resumes.
        preview: ``(lq, hq)`` folders or files whose whole frames the previews and TensorBoard grids
            show every epoch (a fixed held-back set); default: the first training images.
    """
    config.validate()
    # Nothing is written before the run directory is known to fit: not a file, and an existing
    # run's settings (its config.json, possibly hand-edited) and data are the requested ones.
    check_run_directory(run_dir, config)
    data = _scan_training_data(config, lq, hq, preview)  # bad input is reported before any model is built
    check_training_data(run_dir, data.record)
    run = _start_run(config, run_dir, data)
    from ssp_keras.utils.locks import claim_folder

    with claim_folder(run.out_dir, "ssp-net train"):
        return _train_claimed(config, run, data, verbose, callbacks, initial_generator)


def _train_claimed(config, run, data, verbose, callbacks, initial_generator) -> TrainResult:
    """`train` once this process owns the run directory."""
    from ssp_keras.training.model import LOSS_NAMES

    try:
        keras.utils.set_random_seed(config.train.seed)
        model, initial_epoch = _build_or_resume(config, run, initial_generator)
        forget_after(run.out_dir, initial_epoch)
        add_history_columns(run.out_dir, LOSS_NAMES)
        _record_start(config, run, data, initial_epoch)
        try:
            history = _fit(model, config, run, data, initial_epoch, verbose, callbacks)
            generator_path = _save_generator(model, run)
        except OSError as error:  # a full disk, a file system turned read-only
            raise _output_error(error, run) from error
    finally:
        if not run.chief:
            shutil.rmtree(run.out_dir, ignore_errors=True)
    return TrainResult(
        run_dir=run.run_dir,
        generator_path=generator_path,
        initial_epoch=initial_epoch,
        epochs=config.train.epochs,
        history=history,
        replicas=run.replicas,
        global_batch_size=run.global_batch,
        steps_per_epoch=run.steps_per_epoch,
        skipped_files=data.skipped_files,
    )


def _scan_training_data(config: SSPNetConfig, lq: PathList, hq: PathList, preview: Optional[tuple]) -> _TrainingData:
    """The readable LQ, HQ (and preview) files; unreadable ones are skipped by name, warnings logged."""
    from ssp_keras.data.listing import scan_images

    lq_files, lq_skipped = scan_images(lq, config.data.channels)
    hq_files, hq_skipped = scan_images(hq, config.data.channels)
    warnings = training_data_warnings(lq_files, hq_files, config.data.image_size)
    for line in warnings:
        log.warning("%s", line)
    preview_files = None
    if preview is not None:
        preview_files = tuple(scan_images(paths, config.data.channels)[0] for paths in preview)
    record = training_data_record(lq, hq)
    return _TrainingData(lq_files, hq_files, lq_skipped + hq_skipped, warnings, preview_files, record)


def _start_run(config: SSPNetConfig, run_dir: str, data: _TrainingData) -> _Run:
    """Chooses the strategy and creates this worker's output folder."""
    from ssp_keras.training.distribute import describe_worker, is_chief, resolve_strategy, writable_directory

    strategy = resolve_strategy(config.train)
    replicas = strategy.num_replicas_in_sync
    global_batch = config.train.batch_size * replicas
    larger = max(len(data.lq_files), len(data.hq_files))
    steps_per_epoch = config.train.steps_per_epoch or max(1, math.ceil(larger / global_batch))
    out_dir = writable_directory(run_dir, strategy)
    # (created by the claim in `train`, which also proves it writable)
    worker_line = describe_worker(strategy, len(data.lq_files), len(data.hq_files), out_dir)
    if worker_line:
        print(worker_line, flush=True)
    return _Run(run_dir, out_dir, strategy, replicas, global_batch, steps_per_epoch, is_chief(strategy))


def _build_or_resume(config: SSPNetConfig, run: _Run, initial_generator: Optional[str]):
    """The compiled model and the epoch it resumes after (0: a new run), agreed by every worker."""
    from ssp_keras.training.distribute import agree_across_workers

    with run.strategy.scope():
        # Every worker resumes from the chief's checkpoints (run_dir on a shared filesystem).
        model, initial_epoch = _build_model(config, run.steps_per_epoch, run.replicas,
                                            os.path.join(run.run_dir, "checkpoints"))
        if initial_generator and not initial_epoch:
            _load_generator_weights(model.generator, initial_generator)
    agree_across_workers(run.strategy, initial_epoch, "the epoch to resume from")
    return model, initial_epoch


def _record_start(config: SSPNetConfig, run: _Run, data: _TrainingData, initial_epoch: int) -> None:
    """Writes config.json once the run has started (a start that fails leaves none to compare with)."""
    from ssp_keras.training.distribute import strategy_name

    resolved = dict(replicas=run.replicas, global_batch=run.global_batch, steps_per_epoch=run.steps_per_epoch,
                    strategy=strategy_name(run.strategy))
    if data.warnings:
        resolved["warnings"] = data.warnings
    _write_config(config, run.out_dir, data.record, **resolved)
    if initial_epoch:
        log.warning("resuming %s after epoch %d", run.run_dir, initial_epoch)
        print(f"Resuming from the checkpoint of epoch {initial_epoch} in {run.run_dir}", flush=True)


def _fit(model, config: SSPNetConfig, run: _Run, data: _TrainingData, initial_epoch: int, verbose, callbacks) -> dict:
    """``model.fit`` over the epochs left; its history (empty when the run was already complete)."""
    from ssp_keras.data.pipeline import make_unpaired_dataset
    from ssp_keras.training.distribute import worker_shard

    if initial_epoch >= config.train.epochs:
        return {}
    dataset = make_unpaired_dataset(
        data.lq_files, data.hq_files, config.data, batch_size=run.global_batch,
        # A resumed run draws new crops rather than replaying the first epochs' ones.
        seed=config.train.seed + initial_epoch, shard=worker_shard(run.strategy),
        synthetic_scenes=config.loss.synthetic_restoration > 0,
    )
    # On JAX the distribution must be current while fit runs too (it shards each batch).
    with run.strategy.scope() if keras.backend.backend() == "jax" else contextlib.nullcontext():
        fit = model.fit(
            dataset,
            epochs=config.train.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=run.steps_per_epoch,
            callbacks=_callbacks(config, run.out_dir, data.lq_files, data.hq_files, data.preview_files) + list(callbacks),
            verbose=verbose,
            shuffle=False,  # the streams shuffle themselves
        )
    return fit.history


def _output_error(error: OSError, run: _Run):
    """An `OutputError` for a write that failed during training, saying what the run has kept."""
    from ssp_keras.errors import OutputError
    from ssp_keras.training.callbacks import list_states

    states = list_states(os.path.join(run.out_dir, "checkpoints"))
    kept = (f"the run keeps its checkpoint {os.path.basename(states[-1])}: free some space and run the same "
            "command to resume" if states else "no checkpoint was written yet")
    return OutputError(f"cannot write '{error.filename or run.out_dir}': {error.strerror or error}; training "
                       f"stopped, {kept}")


def _save_generator(model, run: _Run) -> Optional[str]:
    """Saves G as generator.keras; its path on the chief, None on other workers."""
    from ssp_keras.inference.loading import GENERATOR_FILE, with_precision
    from ssp_keras.training.callbacks import NonFiniteLossError, describe_non_finite
    from ssp_keras.utils.variables import non_finite_variables

    # Every worker saves (saving may involve collectives); only the chief's copy is kept. A G
    # trained under a mixed policy is saved as float32, so the file computes in float32 wherever
    # it is loaded (`load_generator` picks bfloat16 only when asked to).
    path = os.path.join(run.out_dir, GENERATOR_FILE)
    generator = with_precision(model.generator, "float32")
    bad = non_finite_variables((variable.path, variable) for variable in generator.weights)
    if bad:  # the epoch-end guard makes this unreachable in `train`; kept for what calls this alone
        raise NonFiniteLossError(f"not saving the generator {path}: {describe_non_finite(bad)}")
    atomic_save(path, lambda temporary: generator.save(temporary))
    return path if run.chief else None


def _build_model(config, steps_per_epoch, replicas, checkpoint_dir):
    """Model, optimisers and metrics, built in the caller's strategy scope; restores state."""
    from ssp_keras.precision import resolve_training_precision
    from ssp_keras.training.callbacks import restore_training_state
    from ssp_keras.training.distribute import resolve_sync_batch_norm
    from ssp_keras.training.model import build_optimizers, build_sspnet

    model = build_sspnet(config, sync_batch_norm=resolve_sync_batch_norm(config.generator.sync_batch_norm, replicas),
                         dtype=resolve_training_precision(config.train.precision))
    generator_optimizer, discriminator_optimizer = build_optimizers(config, steps_per_epoch)
    model.compile(
        generator_optimizer=generator_optimizer,
        discriminator_optimizer=discriminator_optimizer,
        # JAX runs a step only compiled (op by op it would be many times slower).
        jit_compile=config.train.jit_compile or keras.backend.backend() == "jax",
    )
    if model.fake_pool is not None:
        # The pool's variables are created on first use; create them now so they can be restored.
        size = config.data.image_size
        model.fake_pool.build((None, size, size, config.data.channels))
    initial_epoch = restore_training_state(model, checkpoint_dir)
    return model, initial_epoch


def _load_generator_weights(generator, source: str) -> None:
    """Copies the weights of a saved generator into ``generator``: of the same architecture, or of
    a narrower one that `grow_generator` grows (a full-resolution skip added, decoder stages widened)."""
    from ssp_keras.inference.loading import load_generator
    from ssp_keras.networks import grow_generator

    saved = load_generator(source)
    try:
        grow_generator(saved, generator)  # the same architecture is the case with nothing to grow
    except ValueError:
        raise InputError(f"cannot start from '{source}': its generator architecture differs from this "
                         "configuration's (only a full-resolution skip or wider decoder stages may be added)") from None
    if (saved.full_resolution_skip, tuple(saved.decoder_widths)) == (generator.full_resolution_skip,
                                                                    tuple(generator.decoder_widths)):
        print(f"Generator initialised from {source}", flush=True)
        return
    print(f"Generator initialised from {source}, grown to this configuration (full-resolution skip "
          f"{saved.full_resolution_skip} -> {generator.full_resolution_skip}, decoder widths "
          f"{list(saved.decoder_widths)} -> {list(generator.decoder_widths)}; the same output to start with)", flush=True)


def _callbacks(config, out_dir, lq_files, hq_files, preview_files=None):
    from ssp_keras.training.callbacks import (
        ImageGridLogger,
        LearningRateLogger,
        NonFiniteLossGuard,
        TrainingStateCheckpoint,
    )

    count = config.train.image_grid_size
    channels = config.data.channels
    logs = os.path.join(out_dir, "logs")
    preview_lq, preview_hq = preview_files if preview_files else (lq_files, hq_files)
    lq_frames = preview_frames(preview_lq[:count], channels)
    return [
        # First: at an epoch's end it checks the weights before anything of the epoch is recorded.
        NonFiniteLossGuard(checkpoint_dir=os.path.join(out_dir, "checkpoints")),
        LearningRateLogger(),
        ImageGridLogger(
            lq_frames,
            preview_frames(preview_hq[:count], channels, shape=lq_frames.shape[1:3]),
            log_dir=logs,
            png_directory=os.path.join(out_dir, "previews"),
        ),
        keras.callbacks.TensorBoard(log_dir=logs, write_graph=False, update_freq="epoch"),
        keras.callbacks.CSVLogger(os.path.join(out_dir, "history.csv"), append=True),
        # Last, so an epoch counts as done only when everything above has run.
        TrainingStateCheckpoint(os.path.join(out_dir, "checkpoints")),
    ]


def preview_frames(
    files: Sequence[str], channels: int, max_side: int = PREVIEW_MAX_SIDE, shape: Optional[tuple] = None
) -> np.ndarray:
    """Whole frames ``[N, H, W, C]`` of the given images, for the previews: what inference sees.

    Frames are shown whole, not cropped, so shading and border artefacts show while training. All
    take ``shape`` or the first frame's (scaled down so its longer side is at most ``max_side``);
    others are resized to it.
    """
    from ssp_keras.data.reading import read_image

    frames = [read_image(path, channels) for path in files]
    if shape is None:
        height, width = frames[0].shape[:2]
        scale = min(1.0, max_side / max(height, width))
        shape = (max(1, round(height * scale)), max(1, round(width * scale)))
    shape = tuple(shape)
    frames = [
        frame if frame.shape[:2] == shape else tf.image.resize(frame, shape, method="area").numpy()
        for frame in frames
    ]
    return np.clip(np.stack(frames), 0.0, 1.0).astype(np.float32)


def check_run_directory(run_dir: str, config: SSPNetConfig) -> None:
    """Refuses (`InputError`) a run directory that is a file, or whose run has other settings.

    A ``config.json`` already in ``run_dir`` (an earlier run, or a hand-edited file) must hold the
    settings of ``config``, except `RESUMABLE_FIELDS` and the informational "resolved" block:
    resuming with other settings would train the stored checkpoints under a configuration that
    did not make them, and rewrite the record of the run. Nothing is written here.
    """
    run_dir = os.fspath(run_dir)
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise InputError(f"the run directory '{run_dir}' is an existing file, not a folder: choose another --out")
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        return
    try:
        with open(path, encoding="utf-8") as handle:
            stored = SSPNetConfig.from_dict(json.load(handle))
    except (OSError, ValueError) as error:  # JSON, unknown or out-of-range fields
        reason = " ".join(str(error).split())
        raise InputError(f"cannot resume the run in '{run_dir}': its {path} is not a valid configuration "
                         f"({reason}); fix it, or choose a new --out for a new run") from None
    old, new = _dotted(stored.to_dict()), _dotted(config.to_dict())
    differing = [key for key in {**new, **old} if key not in RESUMABLE_FIELDS and old.get(key) != new.get(key)]
    if not differing:
        return
    shown = ", ".join(f"{key} {_json(old.get(key))} -> {_json(new.get(key))}" for key in differing[:_SHOWN_DIFFERENCES])
    if len(differing) > _SHOWN_DIFFERENCES:
        shown += f" and {len(differing) - _SHOWN_DIFFERENCES} more"
    raise InputError(
        f"the run in '{run_dir}' was made with other settings: {shown} ({path} -> this command); to resume "
        f"it, use the same settings (or pass --config {path}, with --epochs to extend it), or choose a new "
        "--out for a new run"
    )


def training_data_record(lq: PathList, hq: PathList) -> dict:
    """What config.json keeps of the training images: ``{"lq": {...}, "hq": {...}}``, each with
    ``sources`` (the folders and files given, absolute; the first `_RECORDED_SOURCES`), ``files``
    (how many image files they hold) and ``fingerprint``.

    The fingerprint is a SHA-256 of the sorted file list: each file's path relative to the source
    it was found in, and its size. Cheap (a listing, no decoding), it changes when files are added,
    removed, renamed or replaced by others of another size, and not when the folder is moved.
    """
    return {"lq": _sources_record(lq), "hq": _sources_record(hq)}


#: Sources named in config.json (e.g. after --exclude the trainer gets every file on its own).
_RECORDED_SOURCES = 8


def _sources_record(sources: PathList) -> dict:
    import hashlib

    from ssp_keras.data.listing import list_images

    sources = [os.fspath(sources)] if isinstance(sources, (str, os.PathLike)) else [os.fspath(item) for item in sources]
    entries = []
    for source in sources:
        files = [(path, os.path.relpath(path, source)) for path in list_images(source)] if os.path.isdir(source) \
            else [(source, os.path.basename(source))]
        entries.extend(f"{relative}\t{os.path.getsize(path)}" for path, relative in files)
    digest = hashlib.sha256("\n".join(sorted(entries)).encode("utf-8")).hexdigest()
    named = [os.path.abspath(source) for source in sources[:_RECORDED_SOURCES]]
    if len(sources) > _RECORDED_SOURCES:
        named.append(f"... and {len(sources) - _RECORDED_SOURCES} more")
    return {"sources": named, "files": len(entries), "fingerprint": digest}


def check_training_data(run_dir: str, record: dict) -> None:
    """Refuses (`InputError`) to resume a run on other training images than it was trained on.

    Compares ``record`` (`training_data_record`) with the one in ``run_dir``'s config.json (runs
    from before it was recorded are not checked): a different file list is refused, naming the
    domain, the sources and the file counts; the same files in a moved folder only log a warning.
    Nothing is written here.
    """
    path = os.path.join(os.fspath(run_dir), "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            stored = json.load(handle).get("training_data")
    except (OSError, ValueError, AttributeError):
        return  # no run yet (or check_run_directory has said what is wrong with it)
    if not isinstance(stored, dict):
        return
    for domain in ("lq", "hq"):
        old, new = stored.get(domain) or {}, record[domain]
        if old.get("fingerprint") == new["fingerprint"]:
            if old.get("sources") != new["sources"]:
                log.warning("the run's %s images moved (%s -> %s); the files are the same", domain.upper(),
                            _listing(old.get("sources")), _listing(new["sources"]))
            continue
        raise InputError(
            f"the run in '{run_dir}' was trained on other {domain.upper()} images: {old.get('files', '?')} files in "
            f"{_listing(old.get('sources'))} -> {new['files']} files in {_listing(new['sources'])} (the file "
            f"lists differ; {path} -> this command); to resume it, give the same images, or start a new run "
            f"from its generator with --init-from {run_dir} and another --out"
        )


def _listing(sources) -> str:
    sources = list(sources or ["(unknown)"])
    return ", ".join(f"'{source}'" for source in sources[:3]) + (" ..." if len(sources) > 3 else "")


def forget_after(out_dir: str, epoch: int) -> None:
    """Removes what a killed process recorded in ``out_dir`` after the epoch a run resumes from.

    A process killed between writing an epoch's history row or preview and its checkpoint leaves
    them behind; the resumed run trains that epoch again. history.csv keeps its header and the rows
    of epochs 1..``epoch`` (rewritten atomically), previews of later epochs go. (TensorBoard's
    event files are append-only: there the repeated epoch shows as a second point.)
    """
    import re

    rows = _read_history(out_dir)
    if rows:
        header, body = rows[0], rows[1:]
        column = header.index("epoch") if "epoch" in header else None
        kept = [row for row in body if column is not None and row and row[column].isdigit() and int(row[column]) < epoch]
        if len(kept) != len(body):
            _write_history(out_dir, [header] + kept)
            log.warning("history.csv: dropped %d row(s) of epochs after %d, recorded by a process that did not "
                        "checkpoint them", len(body) - len(kept), epoch)
    previews = os.path.join(out_dir, "previews")
    for name in os.listdir(previews) if os.path.isdir(previews) else ():
        match = re.fullmatch(r"epoch(\d+)\.png", name)
        if match and int(match.group(1)) > epoch:
            os.remove(os.path.join(previews, name))


def add_history_columns(out_dir: str, names: Sequence[str]) -> None:
    """Gives history.csv a column for every name in ``names`` it lacks ("NA" in the rows it holds).

    A run started by an older version lacks the loss terms added since (``shading_loss``); Keras'
    CSVLogger appends with the columns of today's logs, sorted, and writes no header when the file
    has one, so without this the resumed rows would sit under the wrong names.
    """
    rows = _read_history(out_dir)
    if not rows or not rows[0] or rows[0][0] != "epoch" or set(names) <= set(rows[0]):
        return
    header = ["epoch"] + sorted(set(rows[0][1:]) | set(names))  # the CSVLogger's order
    records = [dict(zip(rows[0], row)) for row in rows[1:]]
    _write_history(out_dir, [header] + [[record.get(key, "NA") for key in header] for record in records])
    log.warning("history.csv: added the column(s) %s (written by an older version)",
                ", ".join(sorted(set(names) - set(rows[0]))))


def _read_history(out_dir: str) -> list:
    """The rows of ``out_dir``'s history.csv (header first), or [] when there is none."""
    import csv

    history = os.path.join(out_dir, "history.csv")
    if not os.path.isfile(history):
        return []
    with open(history, newline="") as handle:
        return list(csv.reader(handle))


def _write_history(out_dir: str, rows) -> None:
    """Replaces ``out_dir``'s history.csv with ``rows``, atomically, in the excel dialect Keras'
    CSVLogger writes."""
    import csv
    import io

    text = io.StringIO()
    csv.writer(text).writerows(rows)
    atomic_write_bytes(os.path.join(out_dir, "history.csv"), text.getvalue().encode("utf-8"))


def _dotted(values: dict, prefix: str = "") -> dict:
    """``{"train": {"epochs": 3}}`` -> ``{"train.epochs": 3}``."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _json(value) -> str:
    return "(unset)" if value is None else json.dumps(value)


def training_data_warnings(lq_files: Sequence[str], hq_files: Sequence[str], image_size: int) -> list:
    """One line for each suspicious property of the training images (none: an empty list).

    * LQ and HQ images that are the same files (the same folder given twice): SSP-Net learns to map
      one set onto a *different* one, so there is nothing to learn.
    * Images smaller than the training crops (``data.image_size``): they are scaled up to fit, so
      training sees blurred, enlarged structures.
    """
    from ssp_keras.data.reading import read_image_shape

    lines = []
    lq_real = {os.path.realpath(path) for path in lq_files}
    hq_real = {os.path.realpath(path) for path in hq_files}
    shared = lq_real & hq_real
    if shared and lq_real == hq_real:
        lines.append(f"the LQ and HQ training images are the same {len(shared)} files (the same folder given "
                     "twice?): SSP-Net learns to map LQ images onto different, HQ ones")
    elif shared:
        example = next(path for path in lq_files if os.path.realpath(path) in shared)
        lines.append(f"{len(shared)} training image(s) are both LQ and HQ, e.g. '{example}'")
    small = []
    files = list(dict.fromkeys(list(lq_files) + list(hq_files)))
    for path in files:
        try:
            height, width, _ = read_image_shape(path)
        except InputError:
            continue
        if min(height, width) < image_size:
            small.append((path, height, width))
    if small:
        path, height, width = small[0]
        lines.append(f"{len(small)} of {len(files)} training images are smaller than the {image_size}-pixel "
                     f"training crops (data.image_size) and are scaled up to fit, e.g. '{path}' ({width}x{height})")
    return lines


def _write_config(config: SSPNetConfig, out_dir: str, training_data: dict, **resolved) -> None:
    values = config.to_dict()
    values["resolved"] = resolved
    values["training_data"] = training_data
    atomic_write_bytes(os.path.join(out_dir, "config.json"), (json.dumps(values, indent=2) + "\n").encode())
