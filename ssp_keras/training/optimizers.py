"""Optimisers: `FusedAdam`, Keras' Adam with TensorFlow's fused update kernel."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="ssp_keras")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose per-variable update is TensorFlow's fused ``ResourceApplyAdam``.

    Keras 3's Adam updates each variable with about ten separate element-wise ops (each a pass over
    the variable's memory); the fused kernel does the same arithmetic in one pass:
    m += (g - m)(1 - beta_1), v += (g^2 - v)(1 - beta_2),
    w -= lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon).
    Same variables (checkpoints are interchangeable with `keras.optimizers.Adam`'s) and results up
    to float32 rounding. AMSGrad, sparse gradients, other backends (JAX: Keras' Adam, which XLA
    fuses itself) and multi-replica strategies take Keras' path. Measured in ``benchmarks/RESULTS.md``.
    """

    def update_step(self, gradient, variable, learning_rate):
        if keras.backend.backend() != "tensorflow" or not self._fused_applies(gradient, variable):
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )

    def _fused_applies(self, gradient, variable) -> bool:
        """On the TensorFlow backend: whether the fused kernel applies to this update."""
        import tensorflow as tf

        strategy = getattr(self, "_distribution_strategy", None)
        return (
            not self.amsgrad
            and not isinstance(gradient, tf.IndexedSlices)
            and isinstance(variable, tf.Variable)
            and (strategy is None or strategy.num_replicas_in_sync == 1)
        )


class OptimizerPair:
    """What Keras' trainers see as ``model.optimizer`` of a GAN: its two optimisers, G's then D's.

    Keras' JAX trainer carries ``model.optimizer.variables`` through every step (the state of a
    stateless ``train_step``) and writes them back after the epoch; here they are the variables of
    both optimisers, G's first (`ssp_keras.training.jax_step` splits them). Both are built by
    `SSPNet.compile`, so the pair counts as built. It is nothing more: each optimiser applies its
    own gradients.
    """

    built = True

    def __init__(self, generator_optimizer, discriminator_optimizer):
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer

    @property
    def variables(self):
        return list(self.generator_optimizer.variables) + list(self.discriminator_optimizer.variables)
