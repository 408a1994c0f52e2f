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

`select_keras_backend` sets the Keras backend (``KERAS_BACKEND``) a command runs on, before Keras
loads.

`quiet_tensorflow_import` hides the C++ lines TensorFlow prints while it loads (the absl pre-init
warning, the oneDNN notice, the CUDA stub, each twice: two of TensorFlow's shared libraries carry
their own copy). They are printed before TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL``, so they can only
be filtered: standard error (file descriptor 2) goes to a temporary file while ``import
tensorflow`` runs, and everything but those lines is written back afterwards.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import re
import sys
import tempfile
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


def requested_keras_backend(flag: Optional[str], environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The backend a command was asked for: ``--backend`` if given, else ``$KERAS_BACKEND`` if set, else None."""
    environ = os.environ if environ is None else environ
    return flag or environ.get("KERAS_BACKEND") or None


def select_keras_backend(backend: str) -> None:
    """Makes Keras run on ``backend`` (``tensorflow`` or ``jax``) in this process; call before Keras loads.

    Sets ``KERAS_BACKEND``, which Keras reads once, when it is imported. In a process where Keras
    has already loaded on another backend (a Python session, the tests) it raises `InputError`:
    the backend cannot change any more.
    """
    from ssp_keras.errors import InputError

    os.environ["KERAS_BACKEND"] = backend
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise InputError(f"backend {backend!r} requested, but Keras is already loaded on the "
                             f"{keras.backend.backend()!r} backend in this process; run the command in a new process")


#: CPU flags with which oneDNN runs bfloat16 convolutions and matmuls natively (AVX-512 BF16, AMX).
#: Without them TensorFlow emulates bfloat16 and a ``mixed_bfloat16`` step is ~10x slower.
NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset:
    """The first CPU's feature flags from ``/proc/cpuinfo`` (empty where there is no such file)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags") and ":" in line:
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bfloat16(flags: Optional[frozenset] = None) -> bool:
    """Whether this CPU computes bfloat16 natively (one of `NATIVE_BFLOAT16_FLAGS`)."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in NATIVE_BFLOAT16_FLAGS)


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


# ------------------------------------------------------------------------ TensorFlow's start-up lines
#: absl's warning before its logging is initialised; TensorFlow 2.21 prints it once per library.
_ABSL_PRE_INIT = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
#: A C++ (glog/absl format) INFO, WARNING or ERROR line: ``I0000 00:00:1796... 5322 port.cc:153] ...``.
#: FATAL (``F``) lines are kept: they explain a crash.
_CPP_LOG_LINE = re.compile(rb"^[IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\s\]]+:\d+\] ")


def is_tensorflow_startup_noise(line: bytes) -> bool:
    """Whether ``line`` (one line of standard error printed while TensorFlow loads) is its C++ chatter."""
    line = line.rstrip(b"\r\n")
    return line == _ABSL_PRE_INIT or bool(_CPP_LOG_LINE.match(line))


@contextlib.contextmanager
def filtered_stderr(is_noise=is_tensorflow_startup_noise):
    """Captures file descriptor 2 for the duration; then writes back every line but ``is_noise`` ones.

    What Python and C++ write to standard error meanwhile comes out afterwards, in order. Does
    nothing where descriptor 2 cannot be duplicated.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    capture = tempfile.TemporaryFile()
    try:
        os.dup2(capture.fileno(), 2)
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        capture.seek(0)
        kept = b"".join(line for line in capture.read().splitlines(keepends=True) if not is_noise(line))
        capture.close()
        while kept:
            kept = kept[os.write(2, kept):]


class _QuietImportFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` through the other finders and loads it inside `filtered_stderr`."""

    def __init__(self) -> None:
        self._searching = False

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or self._searching:
            return None
        self._searching = True
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self._searching = False
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _QuietLoader(spec.loader, self)
        return spec

    def uninstall(self) -> None:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader, finder: _QuietImportFinder) -> None:
        self._loader = loader
        self._finder = finder

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._finder.uninstall()  # once: TensorFlow loads a single time per process
        try:
            with filtered_stderr():
                self._loader.exec_module(module)
        finally:
            module.__loader__ = self._loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self._loader

    def __getattr__(self, name):
        return getattr(self._loader, name)


def quiet_tensorflow_import():
    """Makes the first ``import tensorflow`` of this process hide TensorFlow's C++ start-up lines.

    Returns a function that undoes it (a no-op once TensorFlow has loaded), or None when TensorFlow
    is already loaded. Later C++ messages (``failed call to cuInit`` on a machine without a GPU...)
    honour ``TF_CPP_MIN_LOG_LEVEL``, which the caller sets.
    """
    if "tensorflow" in sys.modules:
        return None
    for finder in sys.meta_path:
        if isinstance(finder, _QuietImportFinder):
            return finder.uninstall
    finder = _QuietImportFinder()
    sys.meta_path.insert(0, finder)
    return finder.uninstall
