"""A history pool of past fakes for the discriminator (optional; CycleGAN uses 50 images).

Showing D a mix of current and older enhancements damps oscillation between G and D. For each
incoming image: while the pool is filling, it is stored and passed through; once full, with
probability 1/2 a random stored image is returned instead and replaced by the new one.
"""

from __future__ import annotations

import keras
from keras import ops


class FakeImagePool(keras.layers.Layer):
    """Pool of ``size`` past fakes ``[size, H, W, C]``, created on first use (static H, W, C).

    Written with ``keras.ops`` on fixed shapes, so it runs in a compiled step on every backend.
    Under a distribution strategy every replica reads and writes one shared pool (the first
    replica's update wins), which keeps the pool a plain mirrored variable.
    """

    def __init__(self, size: int = 50, seed: int | None = None, **kwargs):
        super().__init__(trainable=False, **kwargs)
        if size < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        self.size = int(size)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if None in input_shape[1:]:
            raise ValueError(f"the fake pool needs static image shapes, got {input_shape}")
        self.images = self.add_weight(
            shape=(self.size, *input_shape[1:]),
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
            name="images",
        )
        self.count = self.add_weight(
            shape=(), initializer="zeros", dtype="int32", trainable=False,
            aggregation="only_first_replica", name="count",
        )

    def call(self, fakes):
        """``[B, H, W, C]`` fakes in; ``[B, H, W, C]`` out, each the fake itself or a stored one."""
        batch = ops.shape(fakes)[0]
        count = ops.convert_to_tensor(self.count)
        pool = ops.convert_to_tensor(self.images)
        coin = keras.random.uniform((batch,), seed=self.seed_generator)
        random_slot = keras.random.randint((batch,), 0, self.size, seed=self.seed_generator)
        filling_slot = count + ops.arange(batch, dtype="int32")
        filling = filling_slot < self.size
        swap = ops.logical_and(ops.logical_not(filling), coin > 0.5)
        returned = ops.where(swap[:, None, None, None], ops.take(pool, random_slot, axis=0), fakes)
        # Where each incoming image is written (slot), and whether it is written at all; of several
        # images written to one slot, the last one stays.
        slot = ops.where(filling, filling_slot, random_slot)
        written = ops.logical_or(filling, swap)
        hits = ops.logical_and(written[:, None], slot[:, None] == ops.arange(self.size, dtype="int32")[None, :])
        writer = ops.argmax(ops.where(hits, ops.arange(1, batch + 1, dtype="int32")[:, None], 0), axis=0)  # [size]
        updated = ops.where(ops.any(hits, axis=0)[:, None, None, None], ops.take(fakes, writer, axis=0), pool)
        self.images.assign(updated)
        self.count.assign(ops.minimum(count + batch, self.size))
        return returned
