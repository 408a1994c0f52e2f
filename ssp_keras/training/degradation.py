"""The restoration degradation model: what G's LQ input goes through in training (issue #21).

SSP-Net's LQ images are blurred, low in contrast and noisy as well as unevenly lit, but the paper's
losses never show G a blurred fibre: the structure term ties G(x) to the structure of x, blur and
noise included. With this model on, each LQ training crop x is degraded at random into x~, G
enhances x~, and the structure term compares G(x~) with the crop before degradation:

    L_TE = structure(x, G(x~)) + structure(y, G(y)),    x~ = noise(contrast(blur(x)))

so G is taught to undo blur, contrast loss and noise while the adversarial terms still learn from
unpaired HQ images. It is the grayscale analogue of the fundus degradation model of Shen et al.
(IEEE TMI 2021, the paper's ref. [13]): each degradation is applied to a crop with its own
probability, so crops see every subset of them, with parameters drawn from configured ranges:

* blur: a Gaussian of sigma in ``blur_sigma`` (pixels), or, for ``defocus_share`` of the blurred
  crops, a defocus disk of radius in ``defocus_radius`` (pixels, anti-aliased edge);
* contrast loss: ``m + c (x - m)`` around the crop's mean m, c in ``contrast``;
* Poisson-Gaussian noise: ``x + n sqrt(s^2 2x + r^2)``, n ~ N(0, 1) per pixel, with the shot-noise
  level s (std at mid-grey) in ``shot_noise`` and the read-noise std r in ``read_noise``.

Uneven illumination is the data pipeline's ``data.lq_shading`` (applied before, and seen by the
structure term too, which does not judge brightness). Everything is in ``keras.ops`` /
``keras.random`` (any backend) and seeded by a ``keras.random.SeedGenerator`` that is part of the
model's state, so a run is reproducible and resumes exactly. Off by default (the paper has none).
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import keras
from keras import ops

from ssp_keras.defaults import DegradationConfig, check_arguments, degradation_active, rules_of

#: Kernel radius per pixel of Gaussian sigma: exp(-3^2 / 2) ~ 1% of the peak is cut off.
_SIGMAS_PER_RADIUS = 3.0


def _pair(values: Sequence[float]) -> Tuple[float, float]:
    return tuple(float(value) for value in values)


@keras.saving.register_keras_serializable(package="ssp_keras")
class RestorationDegradation(keras.layers.Layer):
    """Random blur, contrast loss and Poisson-Gaussian noise of ``[N, H, W, C]`` crops in [0, 1].

    Identity unless called with ``training=True`` and some probability above 0. Every argument
    is a hyperparameter of the model (see the module docstring; defaults and rules:
    `ssp_keras.defaults.DegradationConfig`, which is ``config.degradation``):

    Args:
        blur_probability: share of crops that are blurred.
        blur_sigma: ``(low, high)`` Gaussian sigma in pixels.
        defocus_share: share of the blurred crops that get a defocus disk instead of a Gaussian.
        defocus_radius: ``(low, high)`` disk radius in pixels.
        contrast_probability: share of crops whose contrast is reduced.
        contrast: ``(low, high)`` factor c of ``m + c (x - m)``, at most 1.
        noise_probability: share of crops that get Poisson-Gaussian noise.
        shot_noise: ``(low, high)`` shot-noise std at mid-grey, in [0, 1] units.
        read_noise: ``(low, high)`` signal-independent noise std.
        seed: seed of the random draws (``None``: random).
    """

    def __init__(
        self,
        blur_probability: float = DegradationConfig.blur_probability,
        blur_sigma: Sequence[float] = DegradationConfig.blur_sigma,
        defocus_share: float = DegradationConfig.defocus_share,
        defocus_radius: Sequence[float] = DegradationConfig.defocus_radius,
        contrast_probability: float = DegradationConfig.contrast_probability,
        contrast: Sequence[float] = DegradationConfig.contrast,
        noise_probability: float = DegradationConfig.noise_probability,
        shot_noise: Sequence[float] = DegradationConfig.shot_noise,
        read_noise: Sequence[float] = DegradationConfig.read_noise,
        seed: int | None = None,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")  # degrades images, not activations
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        settings = dict(
            blur_probability=blur_probability, blur_sigma=_pair(blur_sigma), defocus_share=defocus_share,
            defocus_radius=_pair(defocus_radius), contrast_probability=contrast_probability,
            contrast=_pair(contrast), noise_probability=noise_probability, shot_noise=_pair(shot_noise),
            read_noise=_pair(read_noise),
        )
        check_arguments(type(self).__name__, rules_of(DegradationConfig), settings)
        for name, value in settings.items():
            setattr(self, name, value)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.kernel_radius = max(
            math.ceil(_SIGMAS_PER_RADIUS * self.blur_sigma[1]), math.ceil(self.defocus_radius[1] + 0.5)
        )

    @property
    def active(self) -> bool:
        return degradation_active(self)

    def call(self, images, training=False):
        if not training or not self.active:
            return images
        images = ops.cast(images, "float32")
        if self.blur_probability > 0:
            images = self._blur(images)
        if self.contrast_probability > 0:
            images = self._reduce_contrast(images)
        if self.noise_probability > 0:
            count = ops.shape(images)[0]
            noisy = self._coins(self.noise_probability, count)
            shot = noisy * self._uniform(self.shot_noise, count)
            read = noisy * self._uniform(self.read_noise, count)
            images = add_poisson_gaussian_noise(images, shot, read, self.seed_generator)
        return ops.clip(images, 0.0, 1.0)

    # ------------------------------------------------------------------ the degradations
    def _coins(self, probability: float, count):
        return ops.cast(keras.random.uniform((count,), seed=self.seed_generator) < probability, "float32")

    def _uniform(self, low_high: Tuple[float, float], count):
        low, high = low_high
        return low + (high - low) * keras.random.uniform((count,), seed=self.seed_generator)

    def _blur(self, images):
        """Each image convolved with its own kernel: a Gaussian, a defocus disk or the identity."""
        count = ops.shape(images)[0]
        blurred = self._coins(self.blur_probability, count)
        defocus = self._coins(self.defocus_share, count)
        kernels = blur_kernels(
            self._uniform(self.blur_sigma, count), self._uniform(self.defocus_radius, count),
            blurred, defocus, self.kernel_radius,
        )
        return convolve_per_image(images, kernels)

    def _reduce_contrast(self, images):
        count = ops.shape(images)[0]
        reduced = self._coins(self.contrast_probability, count)
        factor = 1.0 - reduced * (1.0 - self._uniform(self.contrast, count))
        mean = ops.mean(images, axis=(1, 2), keepdims=True)
        return mean + factor[:, None, None, None] * (images - mean)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {name: getattr(self, name) for name in rules_of(DegradationConfig)},
            seed=self.seed,
        )
        return config


def blur_kernels(sigma, radius, blurred, defocus, kernel_radius: int):
    """Per-image 2-D blur kernels ``[N, k, k]`` (k = 2 kernel_radius + 1), each summing to 1.

    sigma, radius: ``[N]`` Gaussian sigma and disk radius in pixels; blurred, defocus: ``[N]`` 0/1,
    whether the image is blurred at all and whether with the disk (else the Gaussian). Unblurred
    images get the identity kernel (a centred delta).
    """
    offsets = ops.cast(ops.arange(-kernel_radius, kernel_radius + 1), "float32")
    distance = ops.sqrt(offsets[:, None] ** 2 + offsets[None, :] ** 2)[None]  # [1, k, k]
    gaussian = ops.exp(-(distance**2) / (2.0 * ops.square(sigma)[:, None, None]))
    disk = ops.clip(radius[:, None, None] + 0.5 - distance, 0.0, 1.0)  # anti-aliased edge
    delta = ops.cast(distance == 0.0, "float32")
    chosen = defocus[:, None, None] * disk + (1.0 - defocus[:, None, None]) * gaussian
    chosen = chosen / ops.sum(chosen, axis=(1, 2), keepdims=True)
    return blurred[:, None, None] * chosen + (1.0 - blurred[:, None, None]) * delta


def convolve_per_image(images, kernels):
    """``images[i]`` (``[N, H, W, C]``) convolved with ``kernels[i]`` (``[N, k, k]``), reflected borders.

    The batch is folded into the channels (``[1, H, W, N*C]``) so one depthwise convolution applies
    every image's own kernel; needs a static N and C.
    """
    count, height, width, channels = images.shape
    if count is None or channels is None:
        raise ValueError(f"per-image blur needs a static batch size and channel count, got {images.shape}")
    size = kernels.shape[-1]
    pad = size // 2
    padded = ops.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="reflect")
    folded = ops.reshape(ops.transpose(padded, (1, 2, 0, 3)), (1, height + 2 * pad, width + 2 * pad, count * channels))
    depthwise = ops.repeat(ops.transpose(kernels, (1, 2, 0)), channels, axis=-1)[:, :, :, None]  # [k, k, N*C, 1]
    out = ops.depthwise_conv(folded, depthwise, strides=1, padding="valid")
    return ops.transpose(ops.reshape(out, (height, width, count, channels)), (2, 0, 1, 3))


def add_poisson_gaussian_noise(images, shot, read, seed):
    """``x + n sqrt(shot^2 2x + read^2)`` per image, n ~ N(0, 1) per pixel, clipped to [0, 1].

    shot: ``[N]`` shot-noise std at mid-grey (a Poisson-like, photon-limited model: smaller in the
    dark); read: ``[N]`` signal-independent std; seed: a ``keras.random.SeedGenerator``.
    """
    images = ops.cast(images, "float32")
    variance = ops.square(shot)[:, None, None, None] * 2.0 * ops.maximum(images, 0.0) + ops.square(read)[:, None, None, None]
    noise = keras.random.normal(ops.shape(images), seed=seed)
    return ops.clip(images + noise * ops.sqrt(variance), 0.0, 1.0)
