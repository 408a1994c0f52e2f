"""Helpers shared by several test files (not a test module: nothing here is collected).

Test files import from here, or from ``tiny`` (tiny configurations and models), never from each
other (tests/ is on sys.path under pytest).
"""

import os

import numpy as np

# For child processes running the library: quiet TensorFlow, CPU only.
SUBPROCESS_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def random_image(height, width, channels=1, seed=0):
    """Uniform noise, float32 ``[height, width, channels]`` in [0, 1)."""
    return np.random.default_rng(seed).random((height, width, channels), dtype=np.float32)


def pink_noise(size, seed, exponent=1.5):
    """A texture with a natural-image-like 1/f^exponent amplitude spectrum, float64 in [0, 1]."""
    rng = np.random.default_rng(seed)
    frequencies = np.fft.fftfreq(size)
    radius = np.hypot(frequencies[:, None], frequencies[None, :])
    radius[0, 0] = 1.0
    spectrum = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) / radius**exponent
    texture = np.real(np.fft.ifft2(spectrum))
    return (texture - texture.min()) / (texture.max() - texture.min())


def file_contents(folder):
    """Every file under ``folder``: ``{relative path: bytes}`` (to show a folder was left untouched)."""
    contents = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(parent, name)
            with open(path, "rb") as handle:
                contents[os.path.relpath(path, folder)] = handle.read()
    return contents


def random_batch(size=64, batch=2, seed=0):
    """An unpaired (LQ, HQ) batch of uniform noise, float32 ``[batch, size, size, 1]`` each."""
    rng = np.random.default_rng(seed)
    return rng.random((batch, size, size, 1), np.float32), rng.random((batch, size, size, 1), np.float32)


def compiled_sspnet(config, steps_per_epoch=10, jit_compile=False):
    """`build_sspnet(config)` compiled with its optimisers, seeded (the same weights every call)."""
    import keras

    from ssp_keras.training import build_optimizers, build_sspnet

    keras.utils.set_random_seed(0)
    model = build_sspnet(config)
    model.compile(*build_optimizers(config, steps_per_epoch), jit_compile=jit_compile)
    return model


def read_history(run_dir):
    """The rows of ``run_dir/history.csv`` (dicts of strings, one per epoch)."""
    import csv

    with open(os.path.join(run_dir, "history.csv"), newline="") as handle:
        return list(csv.DictReader(handle))


def copy_run(run_dir, tmp_path):
    """A copy of the run folder ``run_dir`` at ``tmp_path/run`` (to change without touching a shared one)."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def train_in_process(dataset, config_file, run_dir, *extra, data=None):
    """``ssp-net train`` in this process, one step an epoch, quiet; its exit status. ``data`` replaces
    ``--data DATASET`` (e.g. ``["--lq", ..., "--hq", ...]``)."""
    from ssp_keras.cli.main import main

    source = ["--data", str(dataset)] if data is None else data
    argv = ["train", *source, "--config", str(config_file), "--steps-per-epoch", "1", "--verbose-fit", "0",
            "--out", str(run_dir)]
    return main(argv + [str(item) for item in extra])


def kill_after_checkpoint(command, checkpoint, timeout_s, env=None, then_s=0.0):
    """Runs ``command``, waits until the file ``checkpoint`` exists (and ``then_s`` more seconds),
    then kills the process with SIGKILL, as a crash would. Fails if it exits first or takes longer
    than ``timeout_s``."""
    import signal
    import subprocess
    import time

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + timeout_s
        while not os.path.exists(checkpoint):
            assert process.poll() is None, "training exited early"
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.2)
        time.sleep(then_s)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def run_cli(monkeypatch, argv, subcommands=("enhance", "export", "predict")):
    """``ssp-net ARGV`` in this process (``ssp_keras.cli.main.main``); its exit status.

    Only ``subcommands`` are registered (others may not exist yet in a partial checkout).
    """
    from ssp_keras.cli import main as cli_main

    monkeypatch.setattr(cli_main, "SUBCOMMANDS", tuple(subcommands))
    return cli_main.main(argv)


def dead_pid():
    """The process id of a process that has exited (for names a killed process would have left)."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def stale_temporary_name(label, pid=None):
    """A temporary file name as `ssp_keras.utils.files.temporary_prefix` makes it, of a process
    that is gone (``pid`` or a fresh dead one) on this machine."""
    from ssp_keras.utils.files import temporary_prefix

    mine = temporary_prefix(label)
    return mine.replace(f".tmp-{os.getpid()}-", f".tmp-{pid or dead_pid()}-", 1) + "x1y2"


def hold_folder(folder, purpose):
    """A child process that claims ``folder`` (`ssp_keras.utils.locks.claim_folder`) and sleeps; it
    holds the folder once this returns. Kill it (SIGKILL) to end the claim as a crash would."""
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from ssp_keras.utils.locks import claim_folder\n"
         "with claim_folder(sys.argv[1], sys.argv[2]):\n    print('held', flush=True); time.sleep(300)",
         str(folder), purpose], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def gradient_recorder(name):
    """An optimiser that keeps each variable's gradient of the last step (``.gradients``, optimiser
    variables named ``*_gradient``) and leaves the variable alone, on any backend.

    A step's gradients are deterministic up to float round-off; the weights after an Adam step are
    not comparable element by element: Adam divides by the root of the squared gradient, so an
    element whose gradient is about 0 moves by up to 2 * lr either way on round-off alone.
    """
    import keras

    class GradientRecorder(keras.optimizers.Optimizer):
        def build(self, variables):
            if self.built:
                return
            super().build(variables)
            self.gradients = [self.add_variable_from_reference(variable, "gradient") for variable in variables]

        def update_step(self, gradient, variable, learning_rate):
            self.gradients[self._get_variable_index(variable)].assign(gradient)

    return GradientRecorder(learning_rate=1.0, name=name)


class _Blocked:
    """A `sys.meta_path` finder that refuses to import some top-level packages."""

    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ImportError(f"{name} is blocked in this process (a machine without it)")
        return None


def block_imports(*names):
    """From now on, importing any of the packages ``names`` in this process raises ImportError, as
    on a machine where they are not installed (e.g. ``block_imports("tensorflow")`` for a JAX-only
    GPU machine). Packages already imported stay."""
    import sys

    sys.meta_path.insert(0, _Blocked(names))
