"""Choosing the `tf.distribute` strategy: one code path for one device, all GPUs of a machine
(MirroredStrategy) and several machines (MultiWorkerMirroredStrategy, configured by TF_CONFIG).

``cpu_replicas`` splits the CPU into logical devices so that the multi-replica paths run, and are
tested, on machines without GPUs.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile

import tensorflow as tf

log = logging.getLogger(__name__)


def configure_cpu_replicas(count: int) -> None:
    """Splits the first CPU into ``count`` logical devices (must run before TF uses any device).

    Calling it again with the count already configured is a no-op; another count after the
    runtime started raises a clear error.
    """
    if count <= 1:
        return
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


def resolve_strategy(train_config) -> tf.distribute.Strategy:
    """The strategy named by ``train_config.strategy`` (``auto``, ``none``, ``mirrored``,
    ``multiworker``), after applying ``train_config.cpu_replicas``.

    ``auto``: MirroredStrategy over all GPUs when there are two or more (or over the CPU replicas
    when ``cpu_replicas`` >= 2), otherwise the default (single-device) strategy.
    """
    configure_cpu_replicas(train_config.cpu_replicas)
    kind = train_config.strategy
    if kind == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy 'multiworker' needs the TF_CONFIG environment variable (see README, Scaling out)")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as error:
            raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    devices = [device.name for device in (gpus or cpus)]
    if kind == "mirrored" or (kind == "auto" and (len(gpus) >= 2 or (not gpus and train_config.cpu_replicas >= 2))):
        log.info("MirroredStrategy over %s", devices)
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints and the final model (always, off multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    cluster = resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def worker_shard(strategy: tf.distribute.Strategy) -> tuple[int, int] | None:
    """``(num_workers, index)`` for splitting the file lists per worker, or None on one machine."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None
    resolver = strategy.cluster_resolver
    cluster = resolver.cluster_spec().as_dict()
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    index = resolver.task_id + (len(cluster.get("chief", [])) if resolver.task_type == "worker" else 0)
    return workers, index


def writable_directory(directory: str, strategy: tf.distribute.Strategy) -> str:
    """``directory`` on the chief; a private temporary folder on other workers.

    Keras' multi-worker guide: every worker must run the saving code (it may involve collective
    ops), but only the chief's copy is kept; the others write somewhere disposable.
    """
    if is_chief(strategy):
        return directory
    return tempfile.mkdtemp(prefix="ssp-net-worker-")
