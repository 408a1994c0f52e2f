"""The random smooth illumination field of uneven lighting, written once for any array library.

The data pipeline multiplies LQ training crops by such fields (``data.lq_shading``, in TensorFlow,
inside ``tf.data``), and `SSPNet`'s shading-consistency term (``loss.shading_consistency``, in
``keras.ops``, on any backend) shades G's input once more with them; both draw the field here, so
the two are the same model of uneven illumination.
"""

from __future__ import annotations

import math

#: Uniform draws per field: centre row, centre column, vignette strength, ramp angle, ramp strength.
SHADING_DRAWS = 5


def shading_field(draws, rows, cols, strength: float, xp):
    """Illumination fields ``[N, H, W]`` in (0, 1], maximum 1 in each.

    A vignette ``1 - a * min(r^2, 1)`` around a random point anywhere in the frame (r: distance in
    half-widths over sqrt 2), times a linear ramp ``1 + b * t`` in a random direction (t in
    [-1, 1]), scaled to a maximum of 1; a ~ U(0, strength), b ~ U(0, strength / 2).

    Args:
        draws: ``[N, SHADING_DRAWS]`` uniform in [0, 1), float32.
        rows, cols: ``[H]`` and ``[W]`` coordinates from -1 to 1 (``linspace(-1, 1, size)``).
        strength: in [0, 1].
        xp: the array library: ``keras.ops`` or ``tf.experimental.numpy`` (``cos``, ``sin``,
            ``minimum`` and ``max(axis, keepdims)`` are all it uses).
    """
    centre_row = (draws[:, 0] * 2.0 - 1.0) * 0.8
    centre_col = (draws[:, 1] * 2.0 - 1.0) * 0.8
    vignette_strength = draws[:, 2] * strength
    angle = draws[:, 3] * 2.0 * math.pi
    ramp_strength = draws[:, 4] * strength * 0.5
    per_image = lambda value: value[:, None, None]  # noqa: E731
    rows, cols = rows[None, :, None], cols[None, None, :]
    radius_squared = ((rows - per_image(centre_row)) ** 2 + (cols - per_image(centre_col)) ** 2) / 2.0
    vignette = 1.0 - per_image(vignette_strength) * xp.minimum(radius_squared, 1.0)
    along = (per_image(xp.cos(angle)) * cols + per_image(xp.sin(angle)) * rows) / math.sqrt(2.0)
    field = vignette * (1.0 + per_image(ramp_strength) * along)
    return field / xp.max(field, axis=(1, 2), keepdims=True)
