"""Optimisers: `FusedAdam`, Keras' Adam with TensorFlow's fused update kernel."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="ssp_keras")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose per-variable update is TensorFlow's fused ``ResourceApplyAdam``.

    Keras 3's Adam updates each variable with about ten separate element-wise ops (each a pass over
    the variable's memory); the fused kernel does the same arithmetic in one pass:
    m += (g - m)(1 - beta_1), v += (g^2 - v)(1 - beta_2),
    w -= lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon).
    Same variables (checkpoints are interchangeable with `keras.optimizers.Adam`'s) and results up
    to float32 rounding. AMSGrad, sparse gradients, other backends and multi-replica strategies
    take Keras' path. Measured in ``benchmarks/RESULTS.md``.
    """

    def update_step(self, gradient, variable, learning_rate):
        if not self._fused_applies(gradient, variable):
            return super().update_step(gradient, variable, learning_rate)
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
        strategy = getattr(self, "_distribution_strategy", None)
        return (
            keras.backend.backend() == "tensorflow"
            and not self.amsgrad
            and not isinstance(gradient, tf.IndexedSlices)
            and isinstance(variable, tf.Variable)
            and (strategy is None or strategy.num_replicas_in_sync == 1)
        )
