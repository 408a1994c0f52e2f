"""Run by tests/test_distribute.py in a fresh process on the JAX backend (TensorFlow blocked):
makes JAX see two CPU devices before it initialises, then writes what the test compares to
``OUT/results.npz``.

``one`` / ``two``: one training step (through ``fit``, as the trainer runs it) of the tiny model
with batch norm, from the same initial weights on the same global batch, on one device and under
``keras.distribution.DataParallel`` over the two devices (as the trainer resolves
``strategy="mirrored", cpu_replicas=2`` on JAX): the logged losses, every gradient of the step
(recorded by `helpers.gradient_recorder`, which leaves the weights alone) and the batch-norm
statistics after it. Also the devices the weights live on and how the batch is split.

Usage: KERAS_BACKEND=jax python tests/jax_data_parallel.py OUT
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import block_imports, gradient_recorder  # noqa: E402

block_imports("tensorflow")  # as on a JAX-only machine

from ssp_keras.config import TrainConfig  # noqa: E402
from ssp_keras.training.distribute import resolve_strategy, resolve_sync_batch_norm  # noqa: E402

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

assert keras.backend.backend() == "jax"
# First, before anything initialises JAX's devices (the trainer's path for --cpu-replicas 2).
DISTRIBUTED = resolve_strategy(TrainConfig(strategy="mirrored", cpu_replicas=2))

from tiny import randomised, tiny_config  # noqa: E402

from ssp_keras.training import build_sspnet  # noqa: E402

# No random loss terms (drawn per device otherwise); batch norm, whose statistics must be the
# global batch's on two devices as on one.
CONFIG = tiny_config(**{"loss.structure_noise": 0.0, "generator.normalization": "batch"})
GLOBAL_BATCH = 2 * CONFIG.train.batch_size


def _step(strategy, initial, lq, hq):
    with strategy.scope():  # current while fit runs too: it shards each batch (as the trainer does)
        model = build_sspnet(CONFIG, sync_batch_norm=resolve_sync_batch_norm(None, strategy.num_replicas_in_sync))
        model.compile(gradient_recorder("g"), gradient_recorder("d"))
        for variable, value in zip(model.generator.weights + model.discriminator.weights, initial):
            variable.assign(value)
        shardings = []
        step = model.train_step

        def recording_step(state, data):  # records how the batch reaches the step
            jax.debug.inspect_array_sharding(data[0], callback=lambda sharding: shardings.append(str(sharding)))
            return step(state, data)

        model.train_step = recording_step
        history = model.fit(lq, hq, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0)
    results = {"weight_devices": np.asarray(len(model.generator.weights[0].value.sharding.device_set)),
               "batch_sharding": np.asarray(shardings[0])}
    results.update({f"loss/{name}": np.asarray(values[-1]) for name, values in history.history.items()})
    for net, optimizer in (("generator", model.generator_optimizer), ("discriminator", model.discriminator_optimizer)):
        for index, gradient in enumerate(optimizer.gradients):
            results[f"gradient/{net}/{index:05d}"] = keras.ops.convert_to_numpy(gradient)
    for index, variable in enumerate(model.generator.non_trainable_weights + model.discriminator.non_trainable_weights):
        results[f"statistics/{index:05d}"] = keras.ops.convert_to_numpy(variable)
    return results


def main(out):
    keras.utils.set_random_seed(0)
    model = build_sspnet(CONFIG)
    randomised(model.generator, seed=1, scale=0.2)  # untrained, G would be the identity
    initial = [keras.ops.convert_to_numpy(v) for v in model.generator.weights + model.discriminator.weights]
    rng = np.random.default_rng(0)
    shape = (GLOBAL_BATCH, CONFIG.data.image_size, CONFIG.data.image_size, 1)
    lq, hq = rng.random(shape, np.float32), rng.random(shape, np.float32)
    results = {"two/replicas": np.asarray(DISTRIBUTED.num_replicas_in_sync),
               "two/strategy": np.asarray(DISTRIBUTED.name)}
    for label, strategy in (("one", resolve_strategy(TrainConfig(strategy="none"))), ("two", DISTRIBUTED)):
        keras.utils.set_random_seed(0)
        results.update({f"{label}/{name}": value for name, value in _step(strategy, initial, lq, hq).items()})
    np.savez(os.path.join(out, "results.npz"), **results)


if __name__ == "__main__":
    main(sys.argv[1])
