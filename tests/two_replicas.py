"""Run by tests/test_distribute.py in a fresh process: splits the CPU into two logical devices
before TensorFlow initialises, then writes what the tests compare to ``OUT/results.npz``.

* ``one`` / ``two``: one training step (through ``fit``, as the trainer runs it) of the tiny
  model from the same initial weights on the same global batch, with the default strategy (one
  replica, plain batch norm) and with MirroredStrategy over the two CPUs (two replicas,
  synchronised batch norm, as the trainer resolves it): losses, G and D weights (batch-norm
  moving statistics included) and both optimisers' variables.
* ``restored``: every replica's copy of every state variable after restoring, into a fresh
  two-replica model, the training state saved from the stepped one (``saved``).
* the strategies ``auto`` resolves to, and the error for XLA with two replicas.

Usage: python tests/two_replicas.py OUT
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

from ssp_keras.training.distribute import configure_cpu_replicas  # noqa: E402

configure_cpu_replicas(2)  # first, before anything initialises TensorFlow's devices

import json  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny import tiny_config  # noqa: E402

from ssp_keras.config import TrainConfig  # noqa: E402
from ssp_keras.training import build_optimizers, build_sspnet  # noqa: E402
from ssp_keras.training.callbacks import _state_variables, restore_training_state, save_training_state  # noqa: E402
from ssp_keras.training.distribute import resolve_strategy, resolve_sync_batch_norm  # noqa: E402

STEPS_PER_EPOCH = 10
# No random loss terms: the structure-loss noise is drawn per replica, so with it on the two
# layouts agree in distribution only.
# Batch norm: the synchronised statistics are what this comparison checks (instance norm is per sample).
CONFIG = tiny_config(**{"loss.structure_noise": 0.0, "generator.normalization": "batch"})
GLOBAL_BATCH = 2 * CONFIG.train.batch_size


def _weights(model):
    return model.generator.weights + model.discriminator.weights


def _model(strategy, initial):
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        model = build_sspnet(CONFIG, sync_batch_norm=resolve_sync_batch_norm(CONFIG.generator.sync_batch_norm, replicas))
        model.compile(*build_optimizers(CONFIG, STEPS_PER_EPOCH))
    for variable, value in zip(_weights(model), initial):
        variable.assign(value)
    return model


def _one_step(strategy, initial, batch, results, prefix):
    model = _model(strategy, initial)
    history = model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0, shuffle=False).history
    results[f"{prefix}/replicas"] = strategy.num_replicas_in_sync
    for name, values in history.items():
        results[f"{prefix}/loss/{name}"] = values[-1]
    for index, variable in enumerate(_weights(model)):
        results[f"{prefix}/weight/{index:03d}/{variable.path}"] = keras.ops.convert_to_numpy(variable)
    for optimizer in (model.generator_optimizer, model.discriminator_optimizer):
        for variable in optimizer.variables:
            results[f"{prefix}/optimizer/{variable.path}"] = keras.ops.convert_to_numpy(variable)
    return model


def main(out):
    results = {}
    rng = np.random.default_rng(0)
    size = CONFIG.data.image_size
    batch = tuple(rng.random((GLOBAL_BATCH, size, size, 1), np.float32) for _ in range(2))

    keras.utils.set_random_seed(0)
    initial = [keras.ops.convert_to_numpy(v) for v in _weights(build_sspnet(CONFIG))]

    auto = resolve_strategy(TrainConfig(strategy="auto", cpu_replicas=2))
    results["auto/type"] = type(auto).__name__
    results["auto/replicas"] = auto.num_replicas_in_sync
    try:
        resolve_strategy(TrainConfig(strategy="mirrored", cpu_replicas=2, jit_compile=True))
        results["jit_error"] = ""
    except ValueError as error:
        results["jit_error"] = str(error)

    _one_step(tf.distribute.get_strategy(), initial, batch, results, "one")
    stepped = _one_step(auto, initial, batch, results, "two")

    # Resuming under the strategy: every replica's copy gets the saved state.
    path = os.path.join(out, "state-epoch0001.npz")
    save_training_state(stepped, path, epoch=1)
    fresh = _model(auto, [rng.random(v.shape).astype(v.dtype) for v in initial])
    results["restored/epoch"] = restore_training_state(fresh, out)
    with np.load(path) as saved:
        for name, variable in _state_variables(fresh):
            results[f"saved/{name}"] = saved[name]
            # the tf.Variable behind the Keras variable: a MirroredVariable, one copy per replica
            for replica, value in enumerate(auto.experimental_local_results(variable.value)):
                results[f"restored/{replica}/{name}"] = keras.ops.convert_to_numpy(value)
    np.savez(os.path.join(out, "results.npz"), **results)
    print(json.dumps({"done": True}))


if __name__ == "__main__":
    main(sys.argv[1])
