#!/usr/bin/env bash
# GPU check of ssp-keras on one NVIDIA GPU with JAX and CUDA but no TensorFlow and no package
# index (the H100/H200 machines lent to sessions), in under 8 minutes. On the JAX backend:
#
#   1. nvidia-smi;
#   2. the GPU's bfloat16 and float32 matmul rates (jitted jnp.matmul, 8192^2, in the measuring process);
#   3. the `paper` training step in mixed_bfloat16 and float32 at 256x256 and 384x384, batch 4 per
#      domain: compile time, s/step, images/s, FLOPs (XLA's count), fraction of the bf16 matmul rate,
#      peak GPU memory;
#   4. two minutes of `paper` training on the bundled frames (data/ccmid), numpy batches, losses printed;
#   5. enhancement of a 384x384 and a 4096x4096 image (the large one tiled).
#
# (benchmarks/gpu_check.py does 2-5; see its docstring.) Results: $OUT if set, else ./gpu_results:
# results.json (every number), summary.md (the tables), gpu_check.log, nvidia_smi.txt.
#
# Keras and the few pure-Python packages it needs that such a machine lacks come as wheels in
# .whl/ (git-ignored, carried with the working tree; the download commands and the `run` call
# are in benchmarks/README.md, "GPU check"). They are installed into a temporary folder only when
# the Python does not import Keras already; GPU_CHECK_WHEELS names another wheel folder.
#
#   bash benchmarks/gpu_check.sh              # on the GPU machine
#   bash benchmarks/gpu_check.sh --tiny       # tiny shapes on whatever device JAX has (proves the script)
#   bash benchmarks/gpu_check.sh --dry-run    # print what it would run, touch nothing
#
# GPU_CHECK_PYTHON: the Python to use (default python3). GPU_CHECK_BUDGET_S: seconds for the
# measurements (default 430; the install and start-up come on top).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 1
TINY=0
DRY_RUN=0
for argument in "$@"; do
  case "$argument" in
    --tiny) TINY=1 ;;
    --dry-run) DRY_RUN=1 ;;
    *) echo "gpu_check.sh: unknown argument '$argument' (--tiny, --dry-run)" >&2; exit 2 ;;
  esac
done
if [[ "$DRY_RUN" == 1 ]]; then
  echo "dry run of gpu_check.sh: would install Keras from ${GPU_CHECK_WHEELS:-$REPO/.whl} if it does not import, then run"
  echo "  KERAS_BACKEND=jax ${GPU_CHECK_PYTHON:-python3} benchmarks/gpu_check.py ${OUT:-$REPO/gpu_results}" \
       "--budget-s ${GPU_CHECK_BUDGET_S:-430}$([[ "$TINY" == 1 ]] && echo ' --tiny')"
  exit 0
fi
RESULTS="${OUT:-$REPO/gpu_results}"
mkdir -p "$RESULTS" || exit 1
LOG="$RESULTS/gpu_check.log"
: >"$LOG"
PY="${GPU_CHECK_PYTHON:-python3}"
WHEELS="${GPU_CHECK_WHEELS:-$REPO/.whl}"
BUDGET="${GPU_CHECK_BUDGET_S:-430}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ssp-gpu-check.XXXXXX")" || exit 1
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)
log() { printf '%s\n' "$*" | tee -a "$LOG"; }

log "ssp-keras GPU check (JAX backend), $(date -u +%Y-%m-%dT%H:%M:%SZ), repository $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | tee "$RESULTS/nvidia_smi.txt" | tee -a "$LOG"
else
  log "nvidia-smi: not found" | tee "$RESULTS/nvidia_smi.txt"
fi

# ------------------------------------------------------------------------------ Keras from the carried wheels
SITE="$WORK/site"
if "$PY" -c "import keras, optree, namex" >/dev/null 2>&1; then
  log "python: $("$PY" -c 'import sys, keras; print(sys.version.split()[0], "keras", keras.__version__, "(installed)")')"
  SITE=""
else
  shopt -s nullglob
  wheels=("$WHEELS"/*.whl)
  if [[ ${#wheels[@]} -eq 0 ]]; then
    log "Keras does not import and $WHEELS holds no wheels: download them first (benchmarks/README.md, GPU check)"
    exit 2
  fi
  mkdir -p "$SITE"
  # pip without an index where there is one; else a wheel is a zip archive of the installed files.
  if ! "$PY" -m pip install --quiet --no-index --no-deps --target "$SITE" "${wheels[@]}" >>"$LOG" 2>&1; then
    log "pip could not install the wheels; unpacking them"
    "$PY" -c 'import sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]' "$SITE" "${wheels[@]}" || exit 2
  fi
  log "installed from $WHEELS: $(cd "$WHEELS" && ls *.whl | tr '\n' ' ')"
fi
# The project runs from this checkout; gpu_check.py appends the carried packages after the
# machine's own (no shadowing).
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export SSP_GPU_CHECK_SITE="$SITE"
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
# Memory as the check uses it, not JAX's default preallocation of 75% of the GPU (also what a
# process sharing the GPU needs).
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"
if [[ "$TINY" == 1 ]]; then
  export JAX_PLATFORMS="${JAX_PLATFORMS:-cpu}"
fi

# ------------------------------------------------------------------------------ the measurements
args=("$RESULTS" --budget-s "$BUDGET")
[[ "$TINY" == 1 ]] && args+=(--tiny)
timeout --kill-after=10 $((BUDGET + 60)) "$PY" "$REPO/benchmarks/gpu_check.py" "${args[@]}" 2>&1 | tee -a "$LOG"
status=${PIPESTATUS[0]}
log "gpu_check.py exit status $status; total $(( $(date +%s) - START )) s; results in $RESULTS"
exit "$status"
