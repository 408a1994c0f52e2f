#!/usr/bin/env bash
# GPU check of ssp-keras on one NVIDIA GPU (written for an H200), in under 8 minutes:
#
#   1. nvidia-smi;
#   2. TensorFlow's matmul rate, N x N (8192) after warm-up: float32 (TF32 on, TensorFlow's default,
#      and off), float16, bfloat16;
#   3. the `paper` training step at 384x384, batch 4: float32, mixed_float16 (then its FLOPs,
#      counted from the graph as benchmarks/train_step.py does); images/s, TFLOP/s and the fraction
#      of the matmul rate of the same precision;
#   4. enhancing one 384x384 image (enhance_array), `ssp-net export` of a freshly built paper
#      generator, and served calls of it on the GPU: the SavedModel's signature called directly and
#      through the in-process gRPC test server (ssp_keras/serving/testing.py) with the project's client;
#   5. the training step with XLA (jit_compile): float32, then mixed_float16, as time allows.
#
# Run from the repository root:  bash benchmarks/gpu_check.sh
# Results go to $OUT if set, else ./gpu_results (at most 6 files: gpu_check.log, summary.md,
# results.jsonl, nvidia_smi.txt, install.log, parts.tsv). Every part has a timeout and the whole script a
# deadline (GPU_CHECK_BUDGET_S, default 465 s); a part that would start past it is skipped and says so.
#
# Python: GPU_CHECK_PYTHON if set; else python3 when it imports tensorflow and ssp_keras; else a
# virtual environment (GPU_CHECK_VENV, default /tmp/ssp-gpu-venv) gets `pip install -e .` and
# tensorflow[and-cuda] 2.21 (CUDA 12 libraries as wheels; several GB) -- which needs PyPI (or the
# configured index). Without it and without TensorFlow, the TensorFlow parts cannot run: the script
# says so, still records nvidia-smi and a matmul rate from JAX or CuPy if one is installed, and
# exits with code 3.
#
# The GPU machines lent to this project's sessions (one H200) hold PyTorch, JAX and CuPy for CUDA 13
# but no TensorFlow, cannot reach PyPI, and take at most 64 MiB of carried files per call, while
# tensorflow 2.21's wheel alone is 546 MiB and needs the CUDA 12 libraries (nvidia-*-cu12, several
# GB more). There, this script records nvidia-smi and the JAX/CuPy matmul rates and exits with 3;
# the TensorFlow parts need a GPU machine with tensorflow[and-cuda] 2.21 or network access.
#
# GPU_CHECK_DRY_RUN=1 runs every part on the CPU with tiny shapes (lite preset, 128x128, batch 1,
# 256x256 matmuls) to prove the Python in it works, e.g.
#   GPU_CHECK_DRY_RUN=1 GPU_CHECK_PYTHON=.venv/bin/python OUT=/tmp/gpu_dry nice -n 15 bash benchmarks/gpu_check.sh
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 1
RESULTS="${OUT:-$REPO/gpu_results}"
mkdir -p "$RESULTS" || exit 1
LOG="$RESULTS/gpu_check.log"
JSONL="$RESULTS/results.jsonl"
PARTS="$RESULTS/parts.tsv"
: >"$LOG"; : >"$JSONL"; printf 'part\tstatus\tseconds\tnote\n' >"$PARTS"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ssp-gpu-check.XXXXXX")" || exit 1
trap 'rm -rf "$WORK"' EXIT

DRY="${GPU_CHECK_DRY_RUN:-0}"
START=$(date +%s)
if [[ "$DRY" == 1 ]]; then
  BUDGET="${GPU_CHECK_BUDGET_S:-2400}"; SCALE=4   # slow shared CPUs: longer per-part limits
  export CUDA_VISIBLE_DEVICES=""
else
  BUDGET="${GPU_CHECK_BUDGET_S:-465}"; SCALE=1
fi
DEADLINE=$((START + BUDGET))

log() { printf '%s\n' "$*" | tee -a "$LOG"; }
elapsed() { echo $(( $(date +%s) - START )); }
record() {  # record PART STATUS SECONDS NOTE
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$PARTS"
  log "--- $1: $2 (${3}s)${4:+: $4}"
}

# run_part NAME CAP_SECONDS COMMAND... : runs COMMAND with min(CAP, time left) as its timeout; lines it
# prints starting with "RESULT " are JSON objects collected into results.jsonl.
run_part() {
  local name=$1 cap=$(( $2 * SCALE )); shift 2
  local left=$(( DEADLINE - $(date +%s) ))
  local limit=$(( cap < left ? cap : left ))
  if (( limit < 20 )); then
    record "$name" skipped 0 "not started: ${left}s left of the ${BUDGET}s budget"
    return 0
  fi
  log ""; log "=== $name (limit ${limit}s, at $(elapsed)s)"
  local t0; t0=$(date +%s)
  local line
  timeout --kill-after=10 "$limit" "$@" 2>&1 | while IFS= read -r line || [[ -n "$line" ]]; do
    printf '%s\n' "$line" >>"$LOG"; printf '%s\n' "$line"
    if [[ "$line" == "RESULT "* ]]; then printf '%s\n' "${line#RESULT }" >>"$JSONL"; fi
  done
  local rc=${PIPESTATUS[0]} took=$(( $(date +%s) - t0 ))
  case $rc in
    0) record "$name" ok "$took" "" ;;
    124|137) record "$name" timeout "$took" "stopped at its ${limit}s limit (results printed before it are kept)" ;;
    *) record "$name" failed "$took" "exit code $rc (see gpu_check.log)" ;;
  esac
  return 0
}

log "ssp-keras GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), repo $REPO, results $RESULTS"
[[ "$DRY" == 1 ]] && log "DRY RUN: CPU only, tiny shapes; the numbers mean nothing"
log "git: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?') $(git -C "$REPO" status --porcelain 2>/dev/null | wc -l | tr -d ' ') changed file(s)"

# ------------------------------------------------------------------------------ 1. nvidia-smi
t0=$(date +%s)
if command -v nvidia-smi >/dev/null 2>&1; then
  { timeout 20 nvidia-smi; echo; timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit,compute_cap --format=csv; } \
    >"$RESULTS/nvidia_smi.txt" 2>&1
  cat "$RESULTS/nvidia_smi.txt" >>"$LOG"
  record nvidia-smi ok $(( $(date +%s) - t0 )) "$(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
else
  echo "nvidia-smi not found" >"$RESULTS/nvidia_smi.txt"
  record nvidia-smi "$([[ "$DRY" == 1 ]] && echo skipped || echo failed)" 0 "nvidia-smi not found"
fi

# ------------------------------------------------------------------------------ Python environment
# Run from the repository root, so ssp_keras is this checkout's; the imports check its dependencies.
has_tf() { "$1" -c "import tensorflow, keras, scipy, tensorflow_serving, ssp_keras.training, ssp_keras.serving.testing" >/dev/null 2>&1; }
PY="${GPU_CHECK_PYTHON:-}"
t0=$(date +%s)
if [[ -n "$PY" ]]; then
  if has_tf "$PY"; then record python ok 0 "GPU_CHECK_PYTHON=$PY"; else record python failed 0 "GPU_CHECK_PYTHON=$PY cannot import tensorflow and ssp_keras"; PY=""; fi
elif has_tf python3; then
  PY=python3; record python ok 0 "python3 already has tensorflow and the project's dependencies"
else
  VENV="${GPU_CHECK_VENV:-/tmp/ssp-gpu-venv}"
  log "=== install: python3 lacks TensorFlow or the project's dependencies; installing into $VENV"
  if has_tf "$VENV/bin/python" 2>/dev/null; then
    PY="$VENV/bin/python"; record install ok 0 "reused $VENV"
  elif ! { [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV" >>"$RESULTS/install.log" 2>&1; }; then
    record install failed $(( $(date +%s) - t0 )) "python3 -m venv $VENV failed (see install.log)"
  elif ! timeout 60 "$VENV/bin/python" -m pip download --no-deps --retries 0 --timeout 15 -q -d "$WORK/probe" pip >>"$RESULTS/install.log" 2>&1; then
    record install failed $(( $(date +%s) - t0 )) "PyPI (or the configured package index) is unreachable from this machine, and TensorFlow is not installed: the TensorFlow parts cannot run. Use a machine with network access, or set GPU_CHECK_PYTHON to an interpreter that has tensorflow[and-cuda]==2.21.* and this checkout installed (pip install -e .)"
  else
    cap=$(( 240 * SCALE )); left=$(( DEADLINE - $(date +%s) - 150 )); limit=$(( cap < left ? cap : left ))
    log "pip install -e . tensorflow[and-cuda]>=2.21,<2.22 (limit ${limit}s)"
    if timeout "$limit" "$VENV/bin/python" -m pip install -q --progress-bar off -e . "tensorflow[and-cuda]>=2.21,<2.22" >>"$RESULTS/install.log" 2>&1 && has_tf "$VENV/bin/python"; then
      PY="$VENV/bin/python"; record install ok $(( $(date +%s) - t0 )) "pip install -e . tensorflow[and-cuda] into $VENV"
    else
      record install failed $(( $(date +%s) - t0 )) "pip install failed or ran past ${limit}s (tail of install.log in gpu_check.log)"
      tail -n 20 "$RESULTS/install.log" >>"$LOG"
    fi
  fi
fi

# Everything the Python parts share: results as "RESULT {json}" lines, devices, dry-run shapes.
cat >"$WORK/gpucheck_common.py" <<'PY'
import json, os, statistics, sys, time

REPO = os.environ["GPU_CHECK_REPO"]
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
DRY = os.environ.get("GPU_CHECK_DRY_RUN") == "1"
PRESET = "lite" if DRY else "paper"
SIZE = 128 if DRY else 384  # the lite preset's illumination patches (up to 96 px) need 128
BATCH = 1 if DRY else 4


def result(part, **values):
    print("RESULT " + json.dumps({"part": part, **values}, default=str), flush=True)


def devices(part):
    """TensorFlow's version and GPUs; outside a dry run, exits with a clear error without a GPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    details = [tf.config.experimental.get_device_details(gpu) for gpu in gpus]
    info = {"tensorflow": tf.__version__, "gpus": [d.get("device_name", "?") for d in details],
            "compute_capability": [list(d.get("compute_capability", ())) for d in details],
            "tf_build_cuda": tf.sysconfig.get_build_info().get("cuda_version"),
            "tf32": tf.config.experimental.tensor_float_32_execution_enabled(), "dry_run": DRY}
    print(f"{part}: TensorFlow {info['tensorflow']} (CUDA {info['tf_build_cuda']}), GPUs {info['gpus']}", flush=True)
    if not gpus and not DRY:
        result(part, status="error", error="TensorFlow sees no GPU (CUDA 12 libraries missing? install tensorflow[and-cuda])", **info)
        sys.exit(3)
    return info


def median(values):
    return statistics.median(values)
PY

# ------------------------------------------------------------------------------ 2. matmul rate
cat >"$WORK/matmul.py" <<'PY'
from gpucheck_common import *
import tensorflow as tf

info = devices("matmul")
size = 256 if DRY else int(os.environ.get("GPU_CHECK_MATMUL_SIZE", "8192"))
runs, repeats = (3, 2) if DRY else (20, 3)


def rate(dtype, tf32=True):
    tf.config.experimental.enable_tensor_float_32_execution(tf32)
    a = tf.cast(tf.random.stateless_uniform((size, size), seed=(1, 2)) - 0.5, dtype)
    b = tf.cast(tf.random.stateless_uniform((size, size), seed=(3, 4)) - 0.5, dtype)
    for _ in range(3):
        c = tf.linalg.matmul(a, b)
    float(tf.cast(c[0, 0], tf.float32))  # waits for the warm-up
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(runs):
            c = tf.linalg.matmul(a, b)
        float(tf.cast(c[0, 0], tf.float32))  # the products run in order on one stream
        seconds.append((time.perf_counter() - started) / runs)
    flops = 2.0 * size**3
    return {"flops_per_s": flops / median(seconds), "best_flops_per_s": flops / min(seconds),
            "seconds": [round(s, 6) for s in seconds]}


rates = {}
for label, dtype, tf32 in (("float32_tf32", tf.float32, True), ("float32_strict", tf.float32, False),
                           ("float16", tf.float16, None), ("bfloat16", tf.bfloat16, None)):
    rates[label] = rate(dtype, tf32 if tf32 is not None else True)
    print(f"matmul {size}^3 {label}: {rates[label]['flops_per_s'] / 1e12:.1f} TFLOP/s "
          f"(best {rates[label]['best_flops_per_s'] / 1e12:.1f})", flush=True)
    result("matmul", dtype=label, size=size, runs=runs, repeats=repeats, **rates[label])
tf.config.experimental.enable_tensor_float_32_execution(True)
result("environment", **info)
PY

# ------------------------------------------------------------------------------ 3./5. training step
cat >"$WORK/train.py" <<'PY'
from gpucheck_common import *
import gc

devices("train")
import train_step as bench  # benchmarks/train_step.py: build / run_steps / count_step_flops

variants = os.environ["GPU_CHECK_VARIANTS"].split(",")
count_flops = os.environ.get("GPU_CHECK_COUNT_FLOPS") == "1"
steps, warmup = (2, 1) if DRY else (10, 2)
last = None
for name in variants:
    variant = bench.parse_variant("concat+xla" if "xla" in name else "concat")
    variant["precision"] = "mixed_float16" if "fp16" in name else "float32"
    variant["name"] = name
    started = time.perf_counter()
    model, iterator, config = bench.build(PRESET, SIZE, BATCH, variant, 1)
    built = time.perf_counter() - started
    warm = [bench.run_steps(model, iterator, 1)[0][0] for _ in range(warmup)]
    seconds, user, system = bench.run_steps(model, iterator, steps)
    g_loss = float(model.train_function(iterator)["g_loss"])
    step = median(seconds)
    print(f"train {PRESET} {SIZE}x{SIZE} b{BATCH} {name}: built {built:.1f} s, warm-up "
          f"{', '.join(f'{s:.2f}' for s in warm)} s, {step * 1e3:.1f} ms/step, {2 * BATCH / step:.1f} img/s, "
          f"g_loss {g_loss:.4f}", flush=True)
    result("train", variant=name, preset=PRESET, image_size=SIZE, batch_size=BATCH,
           precision=variant["precision"], jit_compile=variant["jit_compile"], step_s=step,
           min_step_s=min(seconds), step_seconds=[round(s, 5) for s in seconds],
           images_per_s=2 * BATCH / step, build_s=built, warmup_s=warm, g_loss=g_loss,
           parameters=int(model.generator.count_params() + model.discriminator.count_params()))
    if count_flops and last is None:
        last = (model, config)  # the first variant's graph is counted, as train_step.py does
    del model, iterator
    gc.collect()

if count_flops and last is not None:
    # Counted after the timings (tracing the paper step takes a while): the same arithmetic for
    # every precision and for XLA, so one count rates all variants.
    started = time.perf_counter()
    counted = bench.count_step_flops(*last)
    print(f"train: {counted['total'] / 1e9:.1f} GFLOP per step (counted in {time.perf_counter() - started:.1f} s)", flush=True)
    result("flops", preset=PRESET, image_size=SIZE, batch_size=BATCH, flops_per_step=counted["total"],
           conv_matmul_flops_per_step=counted["conv_and_matmul"], uncounted_op_types=counted["uncounted"])
PY

# ------------------------------------------------------------------------------ 4. inference, export, serving
cat >"$WORK/serve.py" <<'PY'
from gpucheck_common import *
import tempfile

info = devices("serve")
import numpy as np
import tensorflow as tf

from ssp_keras.config import preset
from ssp_keras.inference import enhance_array
from ssp_keras.networks import build_generator

repeats = 3 if DRY else 20
generator = build_generator(preset(PRESET).replace(**{"data.channels": 1}))
# An untrained generator is the identity (zero last convolution): perturb the kernels so that
# served-versus-local agreement means something (speed does not depend on the weights).
rng = np.random.default_rng(0)
for variable in generator.weights:
    if "kernel" in variable.path:
        variable.assign(variable.numpy() + rng.normal(0.0, 0.02, variable.shape).astype("float32"))
# 8-bit levels: serving_default takes uint8, so the served and local inputs are then the same.
image = np.round(rng.random((SIZE, SIZE, 1), dtype=np.float32) * 255.0).astype(np.float32) / 255.0


def timed(function, warmup=2):
    for _ in range(warmup):
        function()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return median(seconds), min(seconds)


local = enhance_array(generator, image)
latency, best = timed(lambda: enhance_array(generator, image))
print(f"enhance_array {SIZE}x{SIZE} ({PRESET}): {latency * 1e3:.1f} ms median, {best * 1e3:.1f} ms best", flush=True)
result("inference", preset=PRESET, image_size=SIZE, median_s=latency, best_s=best, repeats=repeats)

with tempfile.TemporaryDirectory(prefix="ssp-gpu-export-") as scratch:
    model_file = os.path.join(scratch, "generator.keras")
    generator.save(model_file)
    base = os.path.join(scratch, "serving")
    from ssp_keras.cli import main as cli_main

    started = time.perf_counter()
    code = cli_main.main(["export", "--model", model_file, "--base", base, "--name", "ssp_net"])
    export_s = time.perf_counter() - started
    print(f"ssp-net export: exit code {code} in {export_s:.1f} s", flush=True)
    result("export", exit_code=code, seconds=export_s, preset=PRESET)
    if code != 0:
        sys.exit(1)
    version_dir = os.path.join(base, "ssp_net", "1")

    loaded = tf.saved_model.load(version_dir)
    signature = loaded.signatures["enhance_float"]
    batch = tf.constant(image[None])
    direct = signature(images=batch)["enhanced"].numpy()[0]
    direct_s, direct_best = timed(lambda: signature(images=batch)["enhanced"].numpy())
    print(f"SavedModel enhance_float {SIZE}x{SIZE}: {direct_s * 1e3:.1f} ms median; "
          f"max |saved - local| {np.abs(direct - local).max():.2e}", flush=True)
    result("savedmodel_call", signature="enhance_float", median_s=direct_s, best_s=direct_best,
           max_abs_difference_vs_local=float(np.abs(direct - local).max()))

    from ssp_keras.serving.client import PredictionClient
    from ssp_keras.serving.testing import InProcessModelServer

    with InProcessModelServer({"ssp_net": os.path.join(base, "ssp_net")}, rest=False) as server:
        with PredictionClient(server.grpc_address, model="ssp_net", channels=1) as client:
            served = client.enhance(image)
            served_s, served_best = timed(lambda: client.enhance(image))
    difference = float(np.abs(served - local).max())
    print(f"gRPC serving_default round trip {SIZE}x{SIZE} (in-process server): {served_s * 1e3:.1f} ms median; "
          f"max |served - local| {difference:.4f} (uint8 output: 1/255 = 0.0039)", flush=True)
    result("served_call", transport="grpc", signature="serving_default", median_s=served_s, best_s=served_best,
           max_abs_difference_vs_local=difference)
    if difference > 1.5 / 255:
        print("served result differs from local inference by more than one grey level", flush=True)
        sys.exit(1)
PY

# ------------------------------------------------------------------------------ run the parts
if [[ -n "$PY" ]]; then
  export GPU_CHECK_REPO="$REPO" PYTHONPATH="$WORK${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
  export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-1}" TF_FORCE_GPU_ALLOW_GROWTH="${TF_FORCE_GPU_ALLOW_GROWTH:-true}"
  export CUDA_MODULE_LOADING="${CUDA_MODULE_LOADING:-LAZY}" CUDA_CACHE_MAXSIZE="${CUDA_CACHE_MAXSIZE:-4294967296}"
  export SSP_KERAS_CPU_SETTINGS=0
  # XLA needs ptxas and libdevice; tensorflow[and-cuda] ships them in the nvidia-cuda-nvcc wheel.
  nvcc_dir="$("$PY" -c 'import os, nvidia.cuda_nvcc as m; print(os.path.dirname(m.__file__) if m.__file__ else list(m.__path__)[0])' 2>/dev/null || true)"
  if [[ -n "$nvcc_dir" && -d "$nvcc_dir/bin" ]]; then
    export PATH="$nvcc_dir/bin:$PATH"
    [[ -z "${XLA_FLAGS:-}" ]] && export XLA_FLAGS="--xla_gpu_cuda_data_dir=$nvcc_dir"
  fi
  log "python: $("$PY" -c 'import sys, tensorflow as tf, keras; print(sys.version.split()[0], "tensorflow", tf.__version__, "keras", keras.__version__)' 2>/dev/null)"

  run_part matmul 50 "$PY" "$WORK/matmul.py"
  if grep -q '"TensorFlow sees no GPU' "$JSONL"; then
    log "TensorFlow sees no GPU: the remaining parts would run on the CPU; skipped"
    for part in train serve train-xla; do record "$part" skipped 0 "TensorFlow sees no GPU"; done
  else
    GPU_CHECK_VARIANTS=fp32,fp16 GPU_CHECK_COUNT_FLOPS=1 run_part train 190 "$PY" "$WORK/train.py"
    run_part serve 90 "$PY" "$WORK/serve.py"
    GPU_CHECK_VARIANTS=xla,xla+fp16 run_part train-xla 150 "$PY" "$WORK/train.py"
  fi
else
  # No TensorFlow: at least the GPU's own matmul rate, from JAX or CuPy if this machine has one.
  cat >"$WORK/matmul_fallback.py" <<'PY'
import json, os, statistics, time
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
size, runs = int(os.environ.get("GPU_CHECK_MATMUL_SIZE", "8192")), 20
def report(library, label, seconds):
    flops = 2.0 * size**3
    value = {"part": "matmul_fallback", "library": library, "dtype": label, "size": size,
             "flops_per_s": flops / statistics.median(seconds), "best_flops_per_s": flops / min(seconds)}
    print(f"{library} matmul {size}^3 {label}: {value['flops_per_s'] / 1e12:.1f} TFLOP/s", flush=True)
    print("RESULT " + json.dumps(value), flush=True)
try:
    import jax, jax.numpy as jnp
    if not any(d.platform == "gpu" for d in jax.devices()):
        raise ImportError("JAX sees no GPU")
    for label, dtype in (("float16", jnp.float16), ("bfloat16", jnp.bfloat16), ("float32_default_precision", jnp.float32)):
        a = jax.random.uniform(jax.random.PRNGKey(0), (size, size), dtype=jnp.float32).astype(dtype)
        b = jax.random.uniform(jax.random.PRNGKey(1), (size, size), dtype=jnp.float32).astype(dtype)
        f = jax.jit(jnp.matmul)
        f(a, b).block_until_ready()
        seconds = []
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(runs):
                c = f(a, b)
            c.block_until_ready()
            seconds.append((time.perf_counter() - t) / runs)
        report("jax", label, seconds)
except ImportError as error:
    print(f"JAX unavailable ({error}); trying CuPy", flush=True)
    import cupy as cp
    for label, dtype in (("float16", cp.float16), ("float32", cp.float32)):
        a = cp.random.random((size, size), dtype=cp.float32).astype(dtype)
        b = cp.random.random((size, size), dtype=cp.float32).astype(dtype)
        cp.matmul(a, b); cp.cuda.Device().synchronize()
        seconds = []
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(runs):
                c = cp.matmul(a, b)
            cp.cuda.Device().synchronize()
            seconds.append((time.perf_counter() - t) / runs)
        report("cupy", label, seconds)
PY
  log "No Python with TensorFlow: the TensorFlow parts (matmul, train, serve, train-xla) are skipped."
  for part in matmul train serve train-xla; do record "$part" skipped 0 "no Python with TensorFlow and ssp_keras (see the install line)"; done
  if [[ "$DRY" != 1 ]] && command -v python3 >/dev/null 2>&1; then
    PYTHONUNBUFFERED=1 run_part matmul-fallback 60 python3 "$WORK/matmul_fallback.py"
  fi
fi

# ------------------------------------------------------------------------------ summary
SUMMARY_PY="${PY:-python3}"
cat >"$WORK/summary.py" <<'PY'
import csv, json, sys
results_dir, budget, total = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(line) for line in open(f"{results_dir}/results.jsonl") if line.strip().startswith("{")]
parts = list(csv.DictReader(open(f"{results_dir}/parts.tsv"), delimiter="\t"))
by = lambda name: [r for r in rows if r.get("part") == name]
out = [f"# ssp-keras GPU check\n", f"Total {total} s of a {budget} s budget.\n"]
smi = open(f"{results_dir}/nvidia_smi.txt").read().strip().splitlines()
out.append(f"GPU (nvidia-smi): `{smi[-1] if smi else '?'}`\n")
env = by("environment")
if env:
    e = env[0]
    out.append(f"TensorFlow {e['tensorflow']} (built for CUDA {e['tf_build_cuda']}), GPUs {e['gpus']}, "
               f"compute capability {e['compute_capability']}, TF32 {'on' if e['tf32'] else 'off'}"
               f"{' — DRY RUN on the CPU, tiny shapes: numbers mean nothing' if e.get('dry_run') else ''}\n")
out += ["## Parts\n", "| part | status | s | note |", "|---|---|---:|---|"]
out += [f"| {p['part']} | {p['status']} | {p['seconds']} | {p['note']} |" for p in parts]
matmul = {r["dtype"]: r for r in by("matmul")}
if matmul or by("matmul_fallback"):
    out += ["", "## Matmul rate (N x N x N, after warm-up)\n", "| library | dtype | N | TFLOP/s median | best |", "|---|---|---:|---:|---:|"]
    out += [f"| tensorflow | {k} | {r['size']} | {r['flops_per_s'] / 1e12:.1f} | {r['best_flops_per_s'] / 1e12:.1f} |" for k, r in matmul.items()]
    out += [f"| {r['library']} | {r['dtype']} | {r['size']} | {r['flops_per_s'] / 1e12:.1f} | {r['best_flops_per_s'] / 1e12:.1f} |" for r in by("matmul_fallback")]
flops = by("flops")
flops = flops[0]["flops_per_step"] if flops else None
train = by("train")
if train:
    out += ["", "## Training step" + (f" ({flops / 1e9:.1f} GFLOP per step, counted from the graph)" if flops else " (FLOPs not counted)") + "\n",
            "Fraction: achieved FLOP/s over the matmul rate of the same precision (float32 steps: TF32 on, TensorFlow's default; mixed_float16 steps: float16).\n",
            "| preset | size | batch | variant | ms/step | img/s | TFLOP/s | of matmul | g_loss | first steps s |", "|---|---:|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in train:
        reference = matmul.get("float16" if r["precision"] == "mixed_float16" else "float32_tf32")
        achieved = flops / r["step_s"] if flops else None
        fraction = f"{achieved / reference['flops_per_s']:.0%}" if achieved and reference else "?"
        out.append(f"| {r['preset']} | {r['image_size']} | {r['batch_size']} | {r['variant']} | {r['step_s'] * 1e3:.1f} | "
                   f"{r['images_per_s']:.1f} | {achieved / 1e12 if achieved else float('nan'):.2f} | {fraction} | {r['g_loss']:.4f} | "
                   f"{', '.join(f'{s:.1f}' for s in r['warmup_s'])} |")
lines = []
for name, label in (("inference", "enhance_array, one image"), ("savedmodel_call", "SavedModel enhance_float, called directly"),
                    ("served_call", "gRPC serving_default via the in-process server")):
    for r in by(name):
        extra = f"; max abs difference vs local {r['max_abs_difference_vs_local']:.4f}" if "max_abs_difference_vs_local" in r else ""
        lines.append(f"| {label} | {r['median_s'] * 1e3:.1f} | {r['best_s'] * 1e3:.1f} | {extra.lstrip('; ')} |")
export = by("export")
if lines or export:
    size = by("inference")[0]["image_size"] if by("inference") else "?"
    out += ["", f"## Inference and serving ({size}x{size}, 1 channel)\n", "| what | ms median | ms best | note |", "|---|---:|---:|---|"] + lines
    out += [f"\n`ssp-net export` of a freshly built generator: exit code {r['exit_code']}, {r['seconds']:.1f} s." for r in export]
open(f"{results_dir}/summary.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
log ""; log "=== summary (at $(elapsed)s)"
if command -v "$SUMMARY_PY" >/dev/null 2>&1 || [[ -x "$SUMMARY_PY" ]]; then
  "$SUMMARY_PY" "$WORK/summary.py" "$RESULTS" "$BUDGET" "$(elapsed)" 2>&1 | tee -a "$LOG"
else
  cat "$PARTS" | tee -a "$LOG"
fi
log "results in $RESULTS"

if [[ -z "$PY" ]]; then exit 3; fi
if grep -qv -P '\t(ok|skipped)\t' <(tail -n +2 "$PARTS"); then exit 1; fi
exit 0
