"""Enhancement quality: SSP-Net generators against the original, CLAHE, DCP and flat-field correction.

Two parts, each printed as a Markdown table (rows = metrics, columns = methods, mean ± std):

* **Synthetic pairs** with a known clean image: ``--synthetic-count`` scenes of
  ``ssp_keras.data.synthetic.generate_pair`` (``--size``), scene ``i`` drawn from
  ``numpy.random.default_rng(numpy.random.SeedSequence([--seed, i]))`` (default seed 2024: a stream
  the training sets never use). PSNR (data range 1) and SSIM (Wang et al. 2004: Gaussian window
  11, sigma 1.5, K1 0.01, K2 0.03) of each method's output against the clean image; the
  ``original`` column is the degraded input itself.
* **Real frames** (``--images``, default the held-out ``data/ccmid/testA``), for each frame I:

  - plain, on G(I): non-uniformity ratio ``nonuni(G(I)) / nonuni(I)``, where ``nonuni`` is the
    std of the means of non-overlapping ``--block`` x ``--block`` tiles (48: 8x8 tiles on a 384
    frame) over the image mean; ``|border band|``, the mean of the outer 6-pixel ring minus that
    of the 12-pixel ring inside it (the ``original`` column is the input's own band); NIQE, PIQE,
    AvG and entropy (``ssp_keras.metrics``); and, as diagnostics (no target), the mean
    brightness of G(I) over I's, and PIQE of G(I) scaled back to I's mean brightness
    (``quality.exposure_matched``): PIQE rises with a global brightening alone (its MSCN
    constant C = 1), so this row separates the enhancement from its exposure change;
  - planted, on G(I v), with the fixed vignette ``v = 1 - 0.6 min(r^2 / R^2, 1)``, r the distance
    to (0.3 H, 0.65 W), R = 0.75 of the half-diagonal
    (``ssp_keras.evaluation.quality.planted_vignette``): shading removed
    ``1 - nonuni(G(I v)) / nonuni(I v)`` in %, and the detail correlation, Pearson's r between
    ``G(I v) - blur(G(I v))`` and ``I - blur(I)`` (Gaussian blur, sigma 3) over the whole frame.

Then, for each model, the targets: planted shading removed >= 70%; plain non-uniformity ratio
<= 0.5; border band <= the input's band + 0.01; detail correlation >= 0.95; NIQE and PIQE <= the
original's; AvG >= the original's; synthetic PSNR >= the degraded input's + 3 dB and > every
baseline's. Each is printed PASS or FAIL (means over the images are compared).

Run by hand, offline (about a minute with one lite model on two cores)::

    python benchmarks/quality.py [--model ccmid-lite] [--model runs/exp1 ...] [--images DIR_OR_FILE ...]
        [--synthetic-count 8] [--size 384] [--json PATH]

Progress goes to stderr; the tables and checks to stdout.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.reexec_with_tcmalloc_if_asked()  # before TensorFlow loads

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPOSITORY not in sys.path:
    sys.path.insert(1, REPOSITORY)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_MODEL = "ccmid-lite"
DEFAULT_IMAGES = os.path.join(REPOSITORY, "data", "ccmid", "testA")
BASELINE_METHODS = ("clahe", "dcp", "flat_field")
ORIGINAL = "original"

# (key, row label, format); formats apply to mean and std alike.
SYNTHETIC_ROWS = (
    ("psnr", "PSNR dB ↑", "{:.2f}"),
    ("ssim", "SSIM ↑", "{:.4f}"),
)
REAL_ROWS = (
    ("nonuniformity", "plain: non-uniformity of output ↓", "{:.4f}"),
    ("nonuniformity_ratio", "plain: non-uniformity ratio out/in ↓", "{:.3f}"),
    ("border_band", "plain: abs(border band) ↓ (original = input's)", "{:.4f}"),
    ("niqe", "plain: NIQE ↓", "{:.3f}"),
    ("piqe", "plain: PIQE ↓", "{:.2f}"),
    ("brightness_ratio", "plain: mean brightness out/in", "{:.3f}"),
    ("piqe_at_input_exposure", "plain: PIQE at the input's brightness ↓ (diagnostic)", "{:.2f}"),
    ("average_gradient", "plain: AvG ↑", "{:.3f}"),
    ("entropy", "plain: entropy ↑", "{:.3f}"),
    ("shading_removed", "planted: shading removed % ↑", "pct"),
    ("detail_correlation", "planted: detail correlation ↑", "{:.4f}"),
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", metavar="NAME_OR_PATH",
                        help=f"generator to score: pretrained name, run folder or .keras file; repeatable "
                             f"(default {DEFAULT_MODEL})")
    parser.add_argument("--images", nargs="+", default=[DEFAULT_IMAGES], metavar="DIR_OR_FILE",
                        help="real frames: folders (searched recursively) or files (default data/ccmid/testA)")
    parser.add_argument("--synthetic-count", type=int, default=8, help="synthetic pairs (0 skips the part)")
    parser.add_argument("--size", type=int, default=384, help="side of the synthetic images")
    parser.add_argument("--seed", type=int, default=2024, help="first word of the synthetic SeedSequence")
    parser.add_argument("--block", type=int, default=48, help="tile side of the non-uniformity measure")
    common.add_common_arguments(parser)
    args = parser.parse_args(argv)
    args.model = args.model or [DEFAULT_MODEL]
    if args.synthetic_count < 0 or args.size < 32 or args.block < 1:
        parser.error("--synthetic-count must be >= 0, --size >= 32 and --block >= 1")
    return args


def progress(message: str) -> None:
    print(f"[quality] {message}", file=sys.stderr, flush=True)


def model_label(source: str, taken) -> str:
    """A short column name for a model: the pretrained name, run folder or file stem (made unique)."""
    from ssp_keras.pretrained import is_pretrained_name

    if is_pretrained_name(source):
        label = source
    else:
        path = os.path.normpath(source)
        stem = os.path.splitext(os.path.basename(path))[0]
        label = (os.path.basename(os.path.dirname(path)) or stem) if stem == "generator" else stem
    base, index = label, 2
    while label in taken:
        label, index = f"{base}#{index}", index + 1
    return label


def build_methods(model_sources):
    """``({column: function [H, W, 1] -> [H, W, 1]}, [model columns], [baseline columns])``."""
    from ssp_keras.evaluation.baselines import get_baseline
    from ssp_keras.inference.enhance import enhance_array
    from ssp_keras.inference.loading import load_generator

    methods = {ORIGINAL: get_baseline("identity")}
    for name in BASELINE_METHODS:
        methods[name] = get_baseline(name)
    models = []
    for source in model_sources:
        progress(f"loading model {source}")
        generator = load_generator(source)
        label = model_label(source, methods)
        methods[label] = lambda image, generator=generator: enhance_array(generator, image)
        models.append(label)
    return methods, models, list(BASELINE_METHODS)


def image_paths(sources):
    from ssp_keras.data.io import expand_image_paths

    return expand_image_paths(sources, missing="--images: no such file or folder: '{}'")


def synthetic_part(methods, count: int, size: int, seed: int):
    """Per-image PSNR/SSIM of every method against the clean image: ``{method: {metric: [...]}}``."""
    import numpy as np

    from ssp_keras.data.synthetic import generate_pair
    from ssp_keras.evaluation.quality import psnr, ssim

    values = {name: {"psnr": [], "ssim": []} for name in methods}
    for index in range(count):
        progress(f"synthetic pair {index + 1}/{count}")
        rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
        degraded, clean, _ = generate_pair(rng, size=size)
        for name, method in methods.items():
            output = np.asarray(method(degraded), dtype=np.float32)
            values[name]["psnr"].append(psnr(output, clean))
            values[name]["ssim"].append(ssim(output, clean))
    return values


def _niqe_or_nan(image):
    from ssp_keras.metrics import niqe
    from ssp_keras.metrics.niqe import NIQE_BLOCK_SIZE

    if min(image.shape[:2]) < NIQE_BLOCK_SIZE:
        return float("nan")
    return niqe(image)


def real_part(methods, paths, block: int):
    """Per-frame plain and planted metrics of every method: ``({method: {metric: [...]}}, names)``."""
    import numpy as np

    from ssp_keras.data.io import read_image
    from ssp_keras.evaluation import quality
    from ssp_keras.metrics import average_gradient, entropy, piqe

    keys = [key for key, _, _ in REAL_ROWS]
    values = {name: {key: [] for key in keys} for name in methods}
    for index, path in enumerate(paths):
        progress(f"frame {index + 1}/{len(paths)}: {os.path.basename(path)}")
        image = read_image(path, channels=1)
        vignetted = quality.apply_vignette(image, quality.planted_vignette(image.shape))
        input_nonuniformity = quality.non_uniformity(image, block)
        for name, method in methods.items():
            output = np.clip(np.asarray(method(image), dtype=np.float32), 0.0, 1.0)
            corrected = np.clip(np.asarray(method(vignetted), dtype=np.float32), 0.0, 1.0)
            nonuniformity = quality.non_uniformity(output, block)
            row = {
                "nonuniformity": nonuniformity,
                "nonuniformity_ratio": nonuniformity / input_nonuniformity if input_nonuniformity > 0 else float("nan"),
                "border_band": abs(quality.border_band(output)),
                "niqe": _niqe_or_nan(output),
                "piqe": piqe(output),
                "brightness_ratio": float(output.mean() / image.mean()) if image.mean() > 0 else float("nan"),
                "piqe_at_input_exposure": piqe(quality.exposure_matched(output, image)),
                "average_gradient": average_gradient(output),
                "entropy": entropy(output),
                "shading_removed": quality.shading_removed(corrected, vignetted, block),
                "detail_correlation": quality.detail_correlation(corrected, image),
            }
            for key in keys:
                values[name][key].append(float(row[key]))
    return values


def summaries(values):
    from ssp_keras.evaluation.quality import summarize

    return {name: {key: summarize(series) for key, series in metrics.items()} for name, metrics in values.items()}


def cell(summary, fmt: str) -> str:
    mean, std = summary["mean"], summary["std"]
    if summary["count"] == 0:
        return "n/a"
    if fmt == "pct":
        return f"{100 * mean:.1f} ± {100 * std:.1f}"
    return f"{fmt.format(mean)} ± {fmt.format(std)}"


def metric_table(title: str, summary, rows, methods) -> str:
    print(f"\n{title}\n", flush=True)
    table_rows = [{"metric": label, **{name: cell(summary[name][key], fmt) for name in methods}}
                  for key, label, fmt in rows]
    return common.print_table(table_rows, [("metric", "metric")] + [(name, name) for name in methods])


def fmt_check(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.4g}"


def print_checks(model: str, checks) -> None:
    print(f"\nTargets, {model}:\n", flush=True)
    for check in checks:
        verdict = "PASS" if check["passed"] else "FAIL"
        value, threshold = check["value"], check["threshold"]
        if check["name"] in ("planted shading removed",):
            shown = f"{100 * value:.1f}% (target {check['rule']})"
        else:
            shown = f"{fmt_check(value)} (target {check['rule']}: {fmt_check(threshold)})"
        print(f"- {verdict}  {check['name']}: {shown}", flush=True)
    passed = sum(check["passed"] for check in checks)
    print(f"- {passed}/{len(checks)} targets met", flush=True)


def _finite_or_none(value):
    """NaN and infinities as None (JSON null), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value




def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    started = time.perf_counter()
    command = shlex.join(["python", os.path.relpath(os.path.abspath(__file__), os.getcwd())] + argv)
    print(f"# Enhancement quality\n\n`{command}`\n\n{common.cpu_line()}", flush=True)
    common.apply_common_arguments(args)

    from ssp_keras.errors import InputError
    from ssp_keras.evaluation import quality

    try:
        methods, models, baselines = build_methods(args.model)
        paths = image_paths(args.images)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2

    synthetic_values = synthetic_part(methods, args.synthetic_count, args.size, args.seed)
    synthetic_summary = summaries(synthetic_values)
    real_values = real_part(methods, paths, args.block)
    real_summary = summaries(real_values)

    names = list(methods)
    if args.synthetic_count:
        metric_table(f"Synthetic pairs ({args.synthetic_count} scenes, {args.size}x{args.size}, seed "
                     f"{args.seed}; `original` = degraded input), against the clean image:",
                     synthetic_summary, SYNTHETIC_ROWS, names)
    metric_table(f"Real frames ({len(paths)}: {', '.join(os.path.basename(p) for p in paths)}); plain = "
                 f"enhancing I, planted = enhancing I·v (off-centre vignette):",
                 real_summary, REAL_ROWS, names)

    targets = {}
    for model in models:
        targets[model] = quality.target_checks(real_summary, synthetic_summary, model, baselines, ORIGINAL)
        print_checks(model, targets[model])
    seconds = time.perf_counter() - started
    print(f"\n{seconds:.0f} s", flush=True)

    if args.json:
        common.write_json(args.json, _finite_or_none({
            "benchmark": "quality",
            "command": command,
            "models": dict(zip(models, args.model)),
            "methods": names,
            "settings": {
                "block": args.block, "border_outer": quality.BORDER_OUTER, "border_inner": quality.BORDER_INNER,
                "detail_sigma": quality.DETAIL_SIGMA,
                "vignette": {"centre": list(quality.VIGNETTE_CENTRE), "strength": quality.VIGNETTE_STRENGTH,
                             "radius_of_half_diagonal": quality.VIGNETTE_RADIUS},
                "synthetic": {"count": args.synthetic_count, "size": args.size, "seed": args.seed},
            },
            "synthetic": {"summary": synthetic_summary, "per_image": synthetic_values},
            "real": {"images": paths, "summary": real_summary, "per_image": real_values},
            "targets": targets,
            "seconds": seconds,
        }))
        progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
