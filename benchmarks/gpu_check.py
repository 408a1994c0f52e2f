"""The GPU check's measurements, on the JAX backend without TensorFlow (benchmarks/gpu_check.sh runs it).

Parts, in this order, each recorded in ``OUT/results.json`` as soon as it ends (a part that fails
is recorded as failed and the others go on; a part that would not fit in the time left is skipped,
saying so):

1. ``environment``: devices, versions;
2. ``matmul``: the GPU's bfloat16 and float32 matmul rates, ``N x N`` (``jnp.matmul``, jitted, in
   this process; float32 at JAX's default precision, which uses TF32 on NVIDIA GPUs);
3. ``step``: the ``paper`` training step (`benchmarks/train_step.py`'s ``build``: `build_sspnet`,
   `build_optimizers`, ``compile`` as the trainer does) in ``mixed_bfloat16`` and ``float32`` at
   256x256 and 384x384, batch 4 per domain: compile time, s/step, images/s (LQ + HQ through G),
   the step's FLOPs (XLA's cost analysis), their rate as a fraction of the bfloat16 matmul rate
   (and of the float32 one), and the GPU's peak memory in use so far (the process's high-water
   mark: the steps run from the smallest to the largest, so each is its own peak);
4. ``train``: ``paper`` training on the bundled CCMID frames (``data/ccmid/trainA`` LQ, ``trainB``
   HQ) for ``--train-seconds`` (120; less if the budget would not leave a minute for part 5),
   continuing the last (384x384, float32) model of part 3, whose step is compiled already: numpy
   batches of random crops with random flips (`ssp_keras.data.io.read_image`; no tf.data, no
   TensorFlow), the losses printed every ``--print-every-s`` seconds (10);
5. ``enhance``: a ``paper`` generator (random weights) enhancing one 384x384 and one 4096x4096
   image with ``enhance_array`` (the large one tiled automatically: 1024-pixel tiles normalised
   with the statistics of a whole-image pass), first call (compilation included) and second.

Then ``OUT/summary.md``: the tables. ``--tiny``: every part on tiny shapes (the ``lite`` preset,
96 and 128 pixels, batch 1, 256x256 matmuls, a 600x600 image in 256-pixel tiles, 15 s of training)
on whatever device JAX has, to prove the script before a GPU is lent.

Usage: KERAS_BACKEND=jax python benchmarks/gpu_check.py OUT [--tiny] [--budget-s 430] [--dry-run]

(``--dry-run``, as in every benchmark: check the arguments, print the plan, build nothing.)
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import site
import sys
import time
import traceback

os.environ.setdefault("KERAS_BACKEND", "jax")
if os.environ.get("SSP_GPU_CHECK_SITE"):  # the wheels gpu_check.sh installed: after the machine's own packages
    site.addsitedir(os.environ["SSP_GPU_CHECK_SITE"])
HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HERE)
sys.path[:0] = [HERE, REPOSITORY]

import common  # noqa: E402


class Results:
    """``results.json`` in ``out``, rewritten after every part (a timeout still leaves every finished part)."""

    def __init__(self, out: str, settings: dict):
        self.path = os.path.join(out, "results.json")
        self.data = {"settings": settings, "parts": []}

    def add(self, section: str, value) -> None:
        self.data.setdefault(section, []).append(value)
        self.write()

    def part(self, name: str, status: str, seconds: float, note: str = "") -> None:
        self.data["parts"].append({"part": name, "status": status, "seconds": round(seconds, 1), "note": note})
        print(f"[{name}] {status} in {seconds:.1f} s{': ' + note if note else ''}", flush=True)
        self.write()

    def write(self) -> None:
        from ssp_keras.utils.files import atomic_write_bytes

        text = json.dumps(self.data, indent=2, default=common._json_default) + "\n"
        atomic_write_bytes(self.path, text.encode())


def run_part(results: Results, name: str, deadline: float, needs_s: float, function) -> object:
    """``function()`` as part ``name`` if ``needs_s`` seconds are left before ``deadline``."""
    left = deadline - time.monotonic()
    if left < needs_s:
        results.part(name, "skipped", 0.0, f"{left:.0f} s left of the budget, the part needs about {needs_s:.0f} s")
        return None
    started = time.monotonic()
    try:
        value = function()
    except Exception as error:  # recorded; the next parts still run
        traceback.print_exc()
        results.part(name, "failed", time.monotonic() - started, f"{type(error).__name__}: {str(error)[:300]}")
        return None
    results.part(name, "ok", time.monotonic() - started)
    return value


def peak_memory_bytes():
    """The default device's peak memory in use by this process so far (None where JAX does not say, e.g. CPUs)."""
    import jax

    stats = jax.local_devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def environment() -> dict:
    import jax
    import keras

    device = jax.local_devices()[0]
    return {"jax": jax.__version__, "keras": keras.__version__, "backend": keras.backend.backend(),
            "python": sys.version.split()[0], "devices": [str(d) for d in jax.devices()],
            "device_kind": getattr(device, "device_kind", device.platform), "platform": device.platform,
            "tensorflow_loaded": "tensorflow" in sys.modules}


def step(preset_name: str, size: int, batch: int, precision: str, steps: int) -> tuple:
    """One training step configuration timed: (row, model, config)."""
    import train_step

    variant = train_step.parse_variant("concat+bf16" if precision == "mixed_bfloat16" else "concat")
    started = time.perf_counter()
    model, data, config = train_step.build(preset_name, size, batch, variant, 1)
    built = time.perf_counter() - started
    started = time.perf_counter()
    train_step.run_steps(model, data, 1)  # compiles
    compiled = time.perf_counter() - started
    warm = train_step.run_steps(model, data, 1)[0][0]
    seconds = train_step.run_steps(model, data, steps)[0]
    flops = train_step.count_step_flops(model, config)["total"]
    median = common.median(seconds)
    row = {"preset": preset_name, "image_size": size, "batch_size": batch, "precision": precision,
           "build_s": built, "first_step_s": compiled, "second_step_s": warm, "step_s": median,
           "step_seconds": seconds, "images_per_s": 2 * batch / median, "flops_per_step": flops,
           "flops_per_s": flops / median if flops else None, "peak_memory_bytes": peak_memory_bytes()}
    return row, model, config


def enhance(preset_name: str, sides, tile_size) -> list:
    import keras
    import numpy as np

    from ssp_keras.config import preset
    from ssp_keras.inference import AUTO_TILE_PIXELS, enhance_array
    from ssp_keras.networks import build_generator

    generator = build_generator(preset(preset_name).replace(**{"data.channels": 1}))
    # Untrained, G is the identity (zero last convolution): perturb every kernel, so the output is
    # a real computation (speed does not depend on the weights).
    rng = np.random.default_rng(0)
    for variable in generator.weights:
        if "kernel" in variable.path:
            value = keras.ops.convert_to_numpy(variable)
            variable.assign(value + rng.normal(0.0, 0.02, value.shape).astype("float32"))
    rows = []
    for side in sides:
        image = rng.random((side, side, 1), dtype=np.float32)
        tiled = side > tile_size if tile_size else side * side > AUTO_TILE_PIXELS
        times = []
        for _ in range(2):  # the first call compiles
            started = time.perf_counter()
            out = enhance_array(generator, image, tile_size=tile_size)  # None: tiles above AUTO_TILE_PIXELS
            times.append(time.perf_counter() - started)
        assert out.shape == image.shape and np.isfinite(out).all() and 0.0 <= out.min() and out.max() <= 1.0
        rows.append({"preset": preset_name, "side": side, "tiled": tiled,
                     "first_s": times[0], "second_s": times[1], "megapixels_per_s": side * side / times[1] / 1e6,
                     "mean_change": float(np.abs(out - image).mean()), "peak_memory_bytes": peak_memory_bytes()})
        print(f"enhance {side}x{side}: first {times[0]:.2f} s, second {times[1]:.3f} s", flush=True)
    return rows


def train(model, config, seconds: float, print_every_s: float) -> dict:
    """Training on the bundled CCMID frames for ``seconds``, numpy batches, the losses printed."""
    import numpy as np

    from ssp_keras.data.reading import read_image

    folders = [os.path.join(REPOSITORY, "data", "ccmid", name) for name in ("trainA", "trainB")]
    frames = [[read_image(path, 1) for path in sorted(glob.glob(os.path.join(folder, "*.jpg")))] for folder in folders]
    if not all(frames):
        raise FileNotFoundError(f"no .jpg frames in {folders}")
    size, batch = config.data.image_size, config.train.batch_size
    rng = np.random.default_rng(0)

    def batch_of(images):
        crops = []
        for index in rng.integers(0, len(images), batch):
            image = images[index]
            top, left = (int(rng.integers(0, dim - size + 1)) for dim in image.shape[:2])
            crop = image[top:top + size, left:left + size]
            crop = crop[::-1] if rng.random() < 0.5 else crop
            crops.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
        return np.ascontiguousarray(np.stack(crops), dtype=np.float32)

    history, started, steps, printed = [], time.perf_counter(), 0, -float("inf")
    while time.perf_counter() - started < seconds:
        logs = model.train_on_batch(batch_of(frames[0]), batch_of(frames[1]), return_dict=True)
        steps += 1
        if time.perf_counter() - printed >= print_every_s:
            printed = time.perf_counter()
            line = {"step": steps, "seconds": round(time.perf_counter() - started, 1), **{k: float(v) for k, v in logs.items()}}
            history.append(line)
            print("train " + " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in line.items()),
                  flush=True)
    elapsed = time.perf_counter() - started
    final = {"step": steps, "seconds": round(elapsed, 1), **{k: float(v) for k, v in logs.items()}}
    if history[-1]["step"] != steps:
        history.append(final)
    return {"frames": [len(f) for f in frames], "image_size": size, "batch_size": batch, "steps": steps,
            "seconds": elapsed, "images_per_s": 2 * batch * steps / elapsed, "losses": history}


def summary(results: dict) -> str:
    """The Markdown tables of ``results``."""
    lines = ["# ssp-keras GPU check (JAX backend)", ""]
    environment_rows = results.get("environment") or [{}]
    env = environment_rows[0]
    tiny_note = " — TINY RUN: tiny shapes, the numbers mean nothing" if results["settings"].get("tiny") else ""
    lines += [f"Device: {env.get('device_kind', '?')} ({env.get('platform', '?')}); JAX {env.get('jax', '?')}, "
              f"Keras {env.get('keras', '?')}, Python {env.get('python', '?')}, TensorFlow loaded: "
              f"{env.get('tensorflow_loaded', '?')}{tiny_note}", ""]
    lines += ["| part | status | s | note |", "|---|---|---:|---|"]
    lines += [f"| {p['part']} | {p['status']} | {p['seconds']} | {p['note']} |" for p in results["parts"]]
    rates = {row["dtype"]: row["flops_per_s"] for row in results.get("matmul", [])}
    if rates:
        lines += ["", "Matmul " + ", ".join(f"{dtype} {rate / 1e12:.1f} TFLOP/s" for dtype, rate in rates.items())
                  + f" ({results['matmul'][0]['size']}^2, jitted jnp.matmul)"]
    mib = lambda value: "?" if value is None else f"{value / 2**20:.0f}"  # noqa: E731
    if results.get("step"):
        lines += ["", "| preset | size | batch | precision | first step s | s/step | img/s | GFLOP/step | TFLOP/s "
                  "| of bf16 matmul | of f32 matmul | peak MiB |", "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in results["step"]:
            rate = row["flops_per_s"] or 0.0
            fraction = lambda dtype: f"{rate / rates[dtype]:.0%}" if rates.get(dtype) and rate else "?"  # noqa: E731
            lines.append(f"| {row['preset']} | {row['image_size']} | {row['batch_size']} | {row['precision']} | "
                         f"{row['first_step_s']:.1f} | {row['step_s']:.4f} | {row['images_per_s']:.1f} | "
                         f"{(row['flops_per_step'] or 0) / 1e9:.1f} | {rate / 1e12:.2f} | {fraction('bfloat16')} | "
                         f"{fraction('float32')} | {mib(row['peak_memory_bytes'])} |")
    if results.get("enhance"):
        lines += ["", "| enhance | tiled | first call s | second call s | Mpx/s | peak MiB |", "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {r['preset']} {r['side']}x{r['side']} | {'yes' if r['tiled'] else 'no'} | {r['first_s']:.2f} | "
                  f"{r['second_s']:.3f} | {r['megapixels_per_s']:.1f} | {mib(r['peak_memory_bytes'])} |"
                  for r in results["enhance"]]
    if results.get("train"):
        run = results["train"][0]
        lines += ["", f"Training on the bundled frames ({run['frames'][0]} LQ, {run['frames'][1]} HQ, "
                  f"{run['image_size']}^2 crops, batch {run['batch_size']}): {run['steps']} steps in "
                  f"{run['seconds']:.0f} s, {run['images_per_s']:.1f} img/s", "",
                  "| step | s | d_loss | g_loss | adv_loss | iu_loss | te_loss |", "|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {h['step']} | {h['seconds']} | {h['d_loss']:.4f} | {h['g_loss']:.4f} | {h['adv_loss']:.4f} | "
                  f"{h['iu_loss']:.4f} | {h['te_loss']:.4f} |" for h in run["losses"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder for results.json and summary.md")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes on any device (see the docstring)")
    parser.add_argument("--budget-s", type=float, default=430.0, help="seconds for all parts (they adapt to it)")
    parser.add_argument("--train-seconds", type=float, default=None, help="training time (default 120; --tiny 15)")
    parser.add_argument("--print-every-s", type=float, default=None, help="seconds between loss lines (default 10; --tiny 3)")
    common.add_dry_run_argument(parser)
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.budget_s
    tiny = args.tiny
    settings = {
        "tiny": tiny, "budget_s": args.budget_s, "preset": "lite" if tiny else "paper",
        "sizes": (96, 128) if tiny else (256, 384), "batch_size": 1 if tiny else 4, "steps": 3 if tiny else 10,
        "matmul_size": 256 if tiny else 8192, "enhance_sides": (96, 600) if tiny else (384, 4096),
        "tile_size": 256 if tiny else None, "train_seconds": args.train_seconds or (15.0 if tiny else 120.0),
        "print_every_s": args.print_every_s or (3.0 if tiny else 10.0),
    }
    if args.dry_run:
        return common.dry_run(args, f"matmul rates, the {settings['preset']} step at {settings['sizes']} in "
                                    f"mixed_bfloat16 and float32, {settings['train_seconds']:.0f} s of training and "
                                    f"enhancement of {settings['enhance_sides']} px images within {args.budget_s:.0f} s, "
                                    f"into {args.out}")
    os.makedirs(args.out, exist_ok=True)
    results = Results(args.out, settings)
    run_part(results, "environment", deadline, 0, lambda: results.add("environment", environment()))

    def matmul():
        for dtype in ("bfloat16", "float32"):
            rate = common.matmul_rate(settings["matmul_size"], runs=10, dtype=dtype)
            results.add("matmul", rate)
            print(f"matmul {dtype} {rate['size']}^2: {rate['flops_per_s'] / 1e12:.2f} TFLOP/s", flush=True)

    run_part(results, "matmul", deadline, 10, matmul)

    # Smallest to largest, so the process's peak memory after each is that configuration's own.
    kept = None
    for size in settings["sizes"]:
        for precision in ("mixed_bfloat16", "float32"):
            def timed_step(size=size, precision=precision):
                row, model, config = step(settings["preset"], size, settings["batch_size"], precision, settings["steps"])
                results.add("step", row)
                print(f"step {settings['preset']} {size}^2 b{settings['batch_size']} {precision}: first "
                      f"{row['first_step_s']:.1f} s, {row['step_s'] * 1e3:.1f} ms/step, {row['images_per_s']:.1f} img/s",
                      flush=True)
                return model, config

            kept = None  # the previous model's memory goes before the next is built
            gc.collect()
            kept = run_part(results, f"step {size} {precision}", deadline, 45 if not tiny else 5, timed_step)

    enhance_needs = 60 if not tiny else 5
    if kept is None:
        results.part("train", "skipped", 0.0, f"the {settings['sizes'][-1]} float32 step did not run")
    else:
        # What is left, less the enhancement's share, up to train_seconds.
        seconds = min(settings["train_seconds"], deadline - time.monotonic() - enhance_needs - 10)
        run_part(results, "train", deadline, enhance_needs + 20 if not tiny else 2,
                 lambda: results.add("train", train(*kept, seconds, settings["print_every_s"])))
    kept = None
    gc.collect()
    run_part(results, "enhance", deadline, enhance_needs,
             lambda: [results.add("enhance", row) for row in enhance(settings["preset"], settings["enhance_sides"],
                                                                      settings["tile_size"])])
    text = summary(results.data)
    from ssp_keras.utils.files import atomic_write_bytes

    atomic_write_bytes(os.path.join(args.out, "summary.md"), text.encode())
    print("\n" + text, flush=True)
    return 0 if all(p["status"] == "ok" for p in results.data["parts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
