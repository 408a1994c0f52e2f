"""Choosing the `tf.distribute` strategy: one code path for one device, all GPUs of a machine
(MirroredStrategy) and several machines (MultiWorkerMirroredStrategy, configured by TF_CONFIG).
On the JAX backend the same settings choose a `keras.distribution.DataParallel` over the devices
(`JaxDistribution`; one machine); TensorFlow is imported only where a tf.distribute strategy is
in play, so the JAX paths run where TensorFlow is not installed.

``cpu_replicas`` splits the CPU into logical devices so that the multi-replica paths run, and are
tested, on machines without GPUs.

Multi-worker runs follow Keras' multi-worker guide: every worker runs the same code, including
the saving code (which may involve collective ops), but only the chief's files are kept; the
other workers write to private temporary folders that are deleted at the end. Each worker reads
its own subset of the image files (``worker_shard``), so no two workers see the same image.

`MultiWorkerWorkarounds` holds what Keras 3.15's ``fit`` needs under MultiWorkerMirroredStrategy
and does not do itself (keras-team/keras#20585, tensorflow/tensorflow#72388), so that `SSPNet`
holds the paper's step and nothing else; `SSPNet` takes it on the TensorFlow backend.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from typing import NamedTuple, Optional

import keras

log = logging.getLogger(__name__)

TASK_TYPES = ("chief", "worker")


def configure_cpu_replicas(count: int) -> None:
    """Splits the first CPU into ``count`` logical devices (must run before TF uses any device; on
    JAX, before JAX initialises its devices: ``--xla_force_host_platform_device_count``).

    Calling it again with the count already configured is a no-op; another count after the
    runtime started raises a clear error.
    """
    if count <= 1:
        return
    if keras.backend.backend() == "jax":
        return _configure_jax_cpu_devices(count)
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current is not None and len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError as error:
        raise RuntimeError(
            f"cannot split the CPU into {count} replicas: TensorFlow's devices are already initialised "
            "in this process (set cpu_replicas before any TensorFlow work)"
        ) from error


def _configure_jax_cpu_devices(count: int) -> None:
    flag = f"--xla_force_host_platform_device_count={count}"
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {flag}".strip()
    import jax

    if len(jax.devices("cpu")) != count:
        raise RuntimeError(
            f"cannot split the CPU into {count} replicas: JAX's devices are already initialised in this process "
            f"({len(jax.devices('cpu'))} CPU devices; set cpu_replicas, or XLA_FLAGS={flag}, before any JAX work)"
        )


class JaxDistribution:
    """What the trainer needs of a strategy, on JAX: ``scope()`` (model, optimisers and metrics are
    created in it) and ``num_replicas_in_sync``.

    ``distribution``: a `keras.distribution.DataParallel` over several devices (each step's global
    batch is split between them; the step is one program over the global batch), or None for one
    device.
    """

    def __init__(self, distribution=None):
        self.distribution = distribution
        self.num_replicas_in_sync = distribution.device_mesh.devices.size if distribution is not None else 1

    def scope(self):
        return self.distribution.scope() if self.distribution is not None else contextlib.nullcontext()

    @property
    def name(self) -> str:
        return type(self.distribution).__name__ if self.distribution is not None else "one device (JAX)"


def strategy_name(strategy) -> str:
    """The name recorded in a run's config.json: the tf.distribute class, or `JaxDistribution.name`."""
    return strategy.name if isinstance(strategy, JaxDistribution) else type(strategy).__name__


def _resolve_jax_distribution(train_config) -> JaxDistribution:
    """`resolve_strategy` on JAX: ``auto`` and ``mirrored`` give DataParallel over all GPUs (or the
    CPU devices of ``cpu_replicas``) when there are two or more, ``none`` one device."""
    import jax

    if train_config.strategy == "multiworker":
        raise ValueError("strategy 'multiworker' (TensorFlow's MultiWorkerMirroredStrategy, configured by TF_CONFIG) "
                         "needs the TensorFlow backend; on JAX use 'auto' or 'mirrored' (the devices of one machine)")
    configure_cpu_replicas(train_config.cpu_replicas)
    gpus = [device for device in jax.devices() if device.platform == "gpu"]
    devices = gpus or jax.devices("cpu")
    several = len(devices) >= 2 and (gpus or train_config.cpu_replicas >= 2)
    if train_config.strategy == "none" or not several:
        return JaxDistribution()
    log.info("DataParallel over %s", devices)
    return JaxDistribution(keras.distribution.DataParallel(devices=[f"{d.platform}:{d.id}" for d in devices]))


def resolve_strategy(train_config) -> tf.distribute.Strategy:
    """The strategy named by ``train_config.strategy`` (``auto``, ``none``, ``mirrored``,
    ``multiworker``), after applying ``train_config.cpu_replicas``.

    ``auto``: MirroredStrategy over all GPUs when there are two or more (or over the CPU replicas
    when ``cpu_replicas`` >= 2 and there is no GPU), otherwise the default (single-device)
    strategy. ``mirrored``: MirroredStrategy over all GPUs, or over the CPU replicas without GPUs.
    ``multiworker``: MultiWorkerMirroredStrategy from the ``TF_CONFIG`` environment variable.

    Raises ValueError for a missing or malformed TF_CONFIG, for ``cpu_replicas`` with
    ``multiworker``, and for ``jit_compile`` with more than one replica (see
    `check_jit_compile`). On the JAX backend: a `JaxDistribution` (`_resolve_jax_distribution`).
    """
    if keras.backend.backend() == "jax":
        return _resolve_jax_distribution(train_config)
    import tensorflow as tf

    kind = train_config.strategy
    if kind == "multiworker":
        if train_config.cpu_replicas > 1:
            raise ValueError(
                "cpu_replicas does not apply to strategy 'multiworker' (each worker trains on its GPUs, "
                "or on one CPU replica); use it with strategy 'mirrored' or 'auto'"
            )
        worker_role_from_tf_config(os.environ.get("TF_CONFIG"))  # clear errors before TF's own
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        configure_cpu_replicas(train_config.cpu_replicas)
        gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
        cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
        mirrored = kind == "mirrored" or (
            kind == "auto" and (len(gpus) >= 2 or (not gpus and train_config.cpu_replicas >= 2))
        )
        if mirrored:
            devices = gpus or cpus
            log.info("MirroredStrategy over %s", devices)
            strategy = tf.distribute.MirroredStrategy(devices)
        else:
            strategy = tf.distribute.get_strategy()
    check_jit_compile(train_config.jit_compile, strategy.num_replicas_in_sync)
    return strategy


def check_jit_compile(jit_compile: bool, replicas: int) -> None:
    """XLA compiles the train step on one replica only.

    Keras 3.15 compiles the whole multi-replica step (``strategy.run`` included) as one XLA
    function, which fails as soon as the replicas' variables live on different devices
    ("Trying to access resource ... located in device CPU:1 from device CPU:0").
    """
    if jit_compile and replicas > 1:
        raise ValueError(
            f"jit_compile (XLA) needs a single replica, but this run has {replicas}: Keras 3.15 compiles the "
            "whole multi-device train step, which XLA cannot do. Drop --jit-compile, or train on one device "
            "(--strategy none)."
        )


def resolve_sync_batch_norm(setting: Optional[bool], replicas: int) -> bool:
    """``generator.sync_batch_norm`` resolved: ``None`` means on exactly when replicas > 1."""
    return replicas > 1 if setting is None else bool(setting)


# ------------------------------------------------------------------------- multi-worker roles
class WorkerRole(NamedTuple):
    """Where this process stands in a multi-worker cluster."""

    index: int  # 0 .. count-1, the chief first
    count: int  # chief + workers
    is_chief: bool


def worker_role(cluster: dict, task_type: Optional[str], task_id: Optional[int]) -> WorkerRole:
    """The role of task ``(task_type, task_id)`` in ``cluster`` (TF_CONFIG's ``cluster`` dict).

    The chief is the ``chief`` task when the cluster has one, else ``worker`` 0 (TensorFlow's
    convention). Indices number the chief first, then the workers.
    """
    chiefs = len(cluster.get("chief", []))
    count = chiefs + len(cluster.get("worker", []))
    if task_type is None or count == 0:
        return WorkerRole(0, 1, True)
    task_id = int(task_id or 0)
    if task_type == "chief":
        return WorkerRole(task_id, count, True)
    if task_type == "worker":
        return WorkerRole(chiefs + task_id, count, chiefs == 0 and task_id == 0)
    raise ValueError(f"TF_CONFIG task type {task_type!r} is not supported; use 'chief' or 'worker'")


def worker_role_from_tf_config(text: Optional[str]) -> WorkerRole:
    """Parses and checks a ``TF_CONFIG`` value; ValueError says what is wrong with it."""
    if not text:
        raise ValueError(
            "strategy 'multiworker' needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}} '
            "(see README, Scaling out)"
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict) or not isinstance(config.get("task"), dict):
        raise ValueError('TF_CONFIG must be a JSON object with "cluster" and "task" objects')
    cluster, task = config["cluster"], config["task"]
    unknown = sorted(set(cluster) - set(TASK_TYPES))
    if unknown:
        raise ValueError(f"TF_CONFIG cluster has unsupported task type {unknown[0]!r}; use 'chief' and 'worker'")
    for name, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise ValueError(f'TF_CONFIG cluster["{name}"] must be a list of "host:port" strings')
    if len(cluster.get("chief", [])) > 1:
        raise ValueError("TF_CONFIG cluster may have at most one chief")
    task_type, index = task.get("type"), task.get("index")
    if task_type not in cluster:
        raise ValueError(f"TF_CONFIG task type {task_type!r} is not in the cluster ({sorted(cluster)})")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[task_type]):
        raise ValueError(f"TF_CONFIG task index {index!r} is out of range for the {len(cluster[task_type])} "
                         f"'{task_type}' task(s)")
    return worker_role(cluster, task_type, index)


def _role(strategy: tf.distribute.Strategy) -> WorkerRole:
    if isinstance(strategy, JaxDistribution):
        return WorkerRole(0, 1, True)
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return WorkerRole(0, 1, True)
    resolver = strategy.cluster_resolver
    return worker_role(resolver.cluster_spec().as_dict(), resolver.task_type, resolver.task_id)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints and the final model (always, off multi-worker)."""
    return _role(strategy).is_chief


def worker_shard(strategy: tf.distribute.Strategy) -> Optional[tuple[int, int]]:
    """``(num_workers, index)`` for splitting the file lists per worker, or None on one machine.

    The trainer passes it to `ssp_keras.data.pipeline.make_unpaired_dataset`, which keeps every
    num_workers-th file from index on, per stream, and switches tf.data's auto-sharding off (the
    zipped, infinitely repeated unpaired streams cannot be auto-sharded by file). Each worker's
    dataset then yields global batches from its own files; `tf.distribute` takes this worker's
    replicas' share of each.
    """
    role = _role(strategy)
    return (role.count, role.index) if role.count > 1 else None


def writable_directory(directory: str, strategy: tf.distribute.Strategy) -> str:
    """``directory`` on the chief; a private temporary folder on other workers.

    Keras' multi-worker guide: every worker must run the saving code (it may involve collective
    ops), but only the chief's copy is kept; the others write somewhere disposable.
    """
    if is_chief(strategy):
        return directory
    return tempfile.mkdtemp(prefix="ssp-net-worker-")


def describe_worker(strategy: tf.distribute.Strategy, lq_count: int, hq_count: int, out_dir: str) -> Optional[str]:
    """One line saying which worker this is, which images it reads and where it writes (multi-worker only)."""
    role = _role(strategy)
    if role.count == 1:
        return None
    own = lambda total: len(range(role.index, total, role.count))  # noqa: E731 (files[index::count])
    where = f"writes the run to {out_dir}" if role.is_chief else f"writes to the temporary folder {out_dir} (deleted at the end)"
    return (
        f"Worker {role.index + 1} of {role.count}{' (chief)' if role.is_chief else ''}: input shard {role.index + 1} "
        f"of {role.count}, {own(lq_count)} of {lq_count} LQ and {own(hq_count)} of {hq_count} HQ images; {where}"
    )


def agree_across_workers(strategy: tf.distribute.Strategy, value: int, what: str) -> None:
    """Raises RuntimeError unless every worker passes the same ``value`` (a no-op off multi-worker).

    A collective op, so every worker must call it at the same point.
    """
    if _role(strategy).count == 1:
        return
    import tensorflow as tf

    @tf.function
    def gather():
        per_replica = strategy.run(lambda: tf.constant([value], tf.int64))
        return strategy.gather(per_replica, axis=0)

    values = sorted(set(int(v) for v in gather().numpy()))
    if len(values) > 1:
        raise RuntimeError(
            f"the workers disagree on {what}: {values}. Give every worker the same --out on a shared "
            "filesystem, or start all of them from scratch."
        )


# ------------------------------------------------------------------------- Keras workarounds
class MultiWorkerWorkarounds:
    """Mixin for a `keras.Model` whose ``fit`` runs under MultiWorkerMirroredStrategy (Keras 3.15:
    Keras 3's ``fit`` does not run there as it comes, keras-team/keras#20585). Off multi-worker it
    changes nothing; `SSPNet` takes it on the TensorFlow backend, before its TensorFlow step.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras' ``fit`` builds a model created under a strategy from the first batch, which it
        first ``strategy.reduce("MEAN", ...)``\ s; under MultiWorkerMirroredStrategy that reduce
        fails on an ``(lq, hq)`` tuple (keras-team/keras#20585: TensorFlow's own multi-worker Keras
        tutorial fails in ``fit`` with Keras 3). The first local replica's batch has the same
        per-replica shapes and needs no cross-worker op.

        It overrides Keras' private ``Model._maybe_symbolic_build`` (no public route avoids that
        reduce); tests/test_model.py fails loudly if a Keras upgrade renames or re-signs it.
        """
        import tensorflow as tf

        strategy = getattr(self, "_distribute_strategy", None)
        if iterator is not None and strategy is not None:
            for _, _, batches in iterator:
                first = next(batches)
                break
            data_batch = keras.tree.map_structure(
                lambda v: strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v,
                first,
            )
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def train_step(self, data):
        return _as_vectors_across_workers(super().train_step(data))

    def test_step(self, data):
        return _as_vectors_across_workers(super().test_step(data))


def _as_vectors_across_workers(logs: dict) -> dict:
    """``logs`` with each scalar as a ``[1]`` vector under multi-worker training.

    Keras reduces multi-worker step outputs with ``strategy.reduce("MEAN", v, axis=0)``, which
    fails on scalars ("Invalid reduction dimension 0 for input with 0 dimensions",
    tensorflow/tensorflow#72388, Keras 3 with tf.distribute); as ``[1]`` vectors they come back
    from that reduce as the same scalars.
    """
    import tensorflow as tf

    if not _multi_worker(tf.distribute.get_strategy()):
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


def _multi_worker(strategy) -> bool:
    """True under MultiWorkerMirroredStrategy with more than one worker.

    ``extended._in_multi_worker_mode()`` is private, but it is the test Keras 3.15 itself applies
    before that reduce (``_collective_all_reduce_multi_worker`` in keras/src/backend/tensorflow/
    trainer.py), so the logs are reshaped exactly when Keras would fail on them; tf.distribute has
    no public equivalent (no upstream issue found: searched keras-team/keras and
    tensorflow/tensorflow issues for "_in_multi_worker_mode" and a public multi-worker query).
    """
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()
