"""Process-wide CPU settings that TensorFlow reads once, when it loads.

Two settings made the ``paper`` training step 1.6x faster on the project's 2-core AMD EPYC
(``benchmarks/RESULTS.md``), and neither can be changed once TensorFlow is imported:

* ``TF_ENABLE_ONEDNN_OPTS=1``: TensorFlow 2.21 uses its oneDNN kernels by default only on CPUs with
  AVX-512 VNNI/BF16 or AMX; on AVX2-only CPUs its Eigen kernels run instead, and they are slower
  for this network's convolutions and their gradients.
* tcmalloc preloaded (``LD_PRELOAD``, Debian/Ubuntu package ``libtcmalloc-minimal4``): glibc's
  malloc hands the step's large buffers back to the OS and faults them in again every step.

`prepare_process` applies them to the ``ssp-net`` command before anything imports TensorFlow: a
variable the user has set is left as it is, tcmalloc is used only when it is installed, and
``SSP_KERAS_CPU_SETTINGS=0`` turns the whole thing off. Nothing here imports TensorFlow or NumPy.
"""

from __future__ import annotations

import os
import sys
from typing import Mapping, Optional, Sequence

#: Where Debian/Ubuntu's ``libtcmalloc-minimal4`` (and Fedora's gperftools-libs) put the library.
TCMALLOC_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib64/libtcmalloc_minimal.so.4",
    "/usr/lib/libtcmalloc_minimal.so.4",
)

#: ``0`` / ``off`` / ``false``: leave allocator and oneDNN exactly as the environment has them.
SWITCH = "SSP_KERAS_CPU_SETTINGS"
#: Set in the re-executed process, so a preload that did not take cannot loop.
_RELAUNCHED = "SSP_KERAS_RELAUNCHED"
#: tcmalloc prints a line for every allocation above this many bytes (default 1 GiB); the tiled
#: enhancement of very large images makes such allocations legitimately.
_LARGE_ALLOC_REPORT = "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"


def tcmalloc_path(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The tcmalloc library to preload (``$SSP_TCMALLOC`` if set), or None when none is installed."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("SSP_TCMALLOC")
    if explicit:
        return explicit if os.path.isfile(explicit) else None
    return next((path for path in TCMALLOC_CANDIDATES if os.path.isfile(path)), None)


def tcmalloc_loaded() -> bool:
    """Whether libtcmalloc is mapped into this process."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as handle:
            return "libtcmalloc" in handle.read()
    except OSError:
        return "tcmalloc" in os.environ.get("LD_PRELOAD", "")


def cpu_settings_environment(environ: Mapping[str, str]) -> dict:
    """A copy of ``environ`` with the settings above added where the user has not set them.

    Returns ``environ`` unchanged (as a copy) when ``SSP_KERAS_CPU_SETTINGS`` is 0/off/false.
    """
    env = dict(environ)
    if env.get(SWITCH, "").strip().lower() in ("0", "off", "false", "no"):
        return env
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    library = tcmalloc_path(env)
    preload = [part for part in env.get("LD_PRELOAD", "").split(":") if part]
    if library and not any("tcmalloc" in part for part in preload):
        env["LD_PRELOAD"] = ":".join([library] + preload)
        env.setdefault(_LARGE_ALLOC_REPORT, str(1 << 40))
    return env


def prepare_process(argv: Sequence[str], module: str = "ssp_keras.cli.main") -> None:
    """Applies `cpu_settings_environment` to this process; call before TensorFlow is imported.

    Environment variables are set in place. A tcmalloc preload can only take effect in a new
    process, so when one is due this re-executes ``python -m MODULE ARGV`` (same interpreter,
    same arguments) and does not return. Does nothing if TensorFlow is already loaded.
    """
    if "tensorflow" in sys.modules:
        return
    env = cpu_settings_environment(os.environ)
    wants_preload = env.get("LD_PRELOAD") != os.environ.get("LD_PRELOAD")
    os.environ.update({key: value for key, value in env.items() if key != "LD_PRELOAD"})
    if not wants_preload or tcmalloc_loaded() or os.environ.get(_RELAUNCHED):
        return
    env[_RELAUNCHED] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)
    except OSError:
        return  # could not re-execute: carry on with glibc's malloc


def describe() -> str:
    """One line on the CPU settings this process runs with, for the start of long commands."""
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (TensorFlow's default)")
    if tcmalloc_loaded():
        allocator = "tcmalloc"
    elif tcmalloc_path() is None:
        allocator = "glibc malloc (install libtcmalloc-minimal4 for faster CPU training)"
    else:
        allocator = "glibc malloc (tcmalloc is installed but not preloaded)"
    return f"CPU settings: TF_ENABLE_ONEDNN_OPTS={onednn}, allocator {allocator}; {SWITCH}=0 leaves both alone"
