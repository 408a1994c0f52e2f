"""`ssp-net train` end to end: outputs of a run, resume after SIGKILL, and bad input."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import ssp_keras.networks  # noqa: F401  (registers SSPGenerator for keras.saving.load_model)
from ssp_keras.training.schedule import schedule_from_config
from helpers import SUBPROCESS_ENV as ENV, kill_after_checkpoint, read_history
from tiny import tiny_config, tiny_config_file, tiny_corn_root

# Short warm-up and halving period so the resumed run crosses schedule boundaries.
SCHEDULE = {"train.lr_warmup_steps": 10, "train.lr_halving_epochs": 2, "train.image_grid_size": 2}
STEPS = 3


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return tiny_corn_root(tmp_path_factory.mktemp("data"), count=4, size=80)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    return tiny_config_file(tmp_path_factory.mktemp("config"), **SCHEDULE)


def _cli(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "ssp_keras.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=ENV)


def _state(run_dir, epoch):
    return np.load(os.path.join(run_dir, "checkpoints", f"state-epoch{epoch:04d}.npz"))


@pytest.mark.slow
def test_train_writes_a_complete_run_directory(dataset, config_file, tmp_path):
    run_dir = tmp_path / "run"
    result = _cli("train", "--data", dataset, "--config", config_file, "--epochs", 2, "--steps-per-epoch", STEPS,
                  "--out", run_dir)
    assert result.returncode == 0, result.stderr
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["train"]["epochs"] == 2
    assert saved["resolved"] == {"replicas": 1, "global_batch": 2, "steps_per_epoch": STEPS, "strategy": "_DefaultDistributionStrategy"}
    assert [int(row["epoch"]) for row in read_history(run_dir)] == [0, 1]
    assert sorted(os.listdir(run_dir / "previews")) == ["epoch0001.png", "epoch0002.png"]
    assert any(name.startswith("events") for name in os.listdir(run_dir / "logs" / "images"))
    generator = keras.saving.load_model(run_dir / "generator.keras")
    assert generator(np.zeros((1, 96, 64, 1), "float32")).shape == (1, 96, 64, 1)
    assert not [n for n in os.listdir(run_dir) if n.startswith(".tmp-")]  # atomic writes left nothing behind


@pytest.mark.slow
@pytest.mark.parametrize("backend, resume_backend", [("tensorflow", "tensorflow"), ("jax", "jax"), ("jax", "tensorflow")])
def test_resume_after_sigkill_continues_epochs_optimiser_and_schedule(dataset, config_file, tmp_path, backend,
                                                                       resume_backend):
    """On each backend, and across them: a checkpoint holds the same variables on TensorFlow and
    JAX, so a run killed on one resumes on the other (train.backend may differ on resume)."""
    run_dir = tmp_path / "run"
    kill_after_checkpoint(  # half a second after the checkpoint: in the middle of a later epoch
        [sys.executable, "-m", "ssp_keras.cli.main", "train", "--data", str(dataset), "--config", str(config_file),
         "--epochs", "1000", "--steps-per-epoch", str(STEPS), "--out", str(run_dir), "--backend", backend],
        run_dir / "checkpoints" / "state-epoch0002.npz", timeout_s=480, env=ENV, then_s=0.5)
    states = sorted(os.listdir(run_dir / "checkpoints"))
    killed_at = max(int(name[11:15]) for name in states if name.endswith(".npz") and not name.startswith(".tmp"))
    assert killed_at >= 2

    assert json.loads((run_dir / "config.json").read_text())["train"]["backend"] == backend

    result = _cli("train", "--data", dataset, "--config", config_file, "--epochs", killed_at + 1,
                  "--steps-per-epoch", STEPS, "--out", run_dir, "--backend", resume_backend, timeout=480)
    assert result.returncode == 0, result.stderr
    assert f"Resuming from the checkpoint of epoch {killed_at}" in result.stdout
    assert json.loads((run_dir / "config.json").read_text())["train"]["backend"] == resume_backend
    rows = read_history(run_dir)
    assert int(rows[-1]["epoch"]) == killed_at  # the one new epoch, numbered after the killed run's
    with _state(run_dir, killed_at + 1) as final, _state(run_dir, killed_at) as before:
        assert int(final["__epoch__"]) == killed_at + 1
        # Optimiser iterations continued from the checkpoint: one more epoch of steps, no restart.
        assert int(final["generator_optimizer/00000"]) == (killed_at + 1) * STEPS
        assert int(before["generator_optimizer/00000"]) == killed_at * STEPS
    config = tiny_config(**SCHEDULE)
    expected_lr = float(schedule_from_config(config.train, STEPS)((killed_at + 1) * STEPS))
    assert float(rows[-1]["generator_lr"]) == pytest.approx(expected_lr, rel=1e-5)


def _in_process(capsys, *args):
    """``ssp-net ARGS`` through ``ssp_keras.cli.main.main`` in this process: (exit status, stderr)."""
    from ssp_keras.cli.main import main

    capsys.readouterr()
    code = main([str(arg) for arg in args])
    return code, capsys.readouterr().err


def test_missing_and_empty_folders_are_one_line_errors(tmp_path, dataset, capsys):
    code, error = _in_process(capsys, "train", "--lq", tmp_path / "nope", "--hq", dataset / "trainB",
                              "--out", tmp_path / "run")
    assert code == 2
    assert "nope" in error and "Traceback" not in error
    (tmp_path / "empty").mkdir()
    code, error = _in_process(capsys, "train", "--lq", tmp_path / "empty", "--hq", dataset / "trainB",
                              "--out", tmp_path / "run")
    assert code == 2 and "empty" in error and "Traceback" not in error
    assert not (tmp_path / "run" / "generator.keras").exists()


@pytest.mark.slow
def test_corrupt_files_are_skipped_by_name(tmp_path, dataset, config_file):
    lq = tmp_path / "lq"
    lq.mkdir()
    for name in sorted(os.listdir(dataset / "trainA")):
        (lq / name).write_bytes((dataset / "trainA" / name).read_bytes())
    (lq / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (lq / "empty.jpg").write_bytes(b"")
    before = {name: (lq / name).read_bytes() for name in os.listdir(lq)}
    result = _cli("train", "--lq", lq, "--hq", dataset / "trainB", "--config", config_file, "--epochs", 1,
                  "--steps-per-epoch", 1, "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "broken.png" in result.stderr and "empty.jpg" in result.stderr
    assert "Skipped 2 unreadable files" in result.stdout
    assert {name: (lq / name).read_bytes() for name in os.listdir(lq)} == before  # inputs untouched


def test_bad_config_value_names_the_field(tmp_path, dataset, capsys):
    code, error = _in_process(capsys, "train", "--data", dataset, "--preset", "lite", "--image-size", 100,
                              "--out", tmp_path / "run")
    assert code == 2
    assert "data.image_size" in error and "Traceback" not in error


@pytest.mark.slow
def test_init_from_fine_tunes_a_saved_generator_and_refuses_another_architecture(dataset, config_file, tmp_path, capsys):
    first = _cli("train", "--data", dataset, "--config", config_file, "--epochs", 1, "--steps-per-epoch", 1,
                 "--out", tmp_path / "a")
    assert first.returncode == 0, first.stderr
    tuned = _cli("train", "--data", dataset, "--config", config_file, "--epochs", 1, "--steps-per-epoch", 1,
                 "--init-from", tmp_path / "a", "--out", tmp_path / "b")
    assert tuned.returncode == 0, tuned.stderr
    assert f"Generator initialised from {tmp_path / 'a'}" in tuned.stdout
    code, error = _in_process(capsys, "train", "--data", dataset, "--preset", "lite", "--image-size", 64,
                              "--iu-patch-sizes", 16, 32, "--epochs", 1, "--steps-per-epoch", 1,
                              "--init-from", tmp_path / "a", "--out", tmp_path / "c")
    assert code == 2 and "architecture differs" in error and "Traceback" not in error


def test_init_from_a_generator_of_another_architecture_is_one_line(dataset, tmp_path, capsys):
    """The refusal above, in the local loop: a saved (untrained) tiny generator, a lite run."""
    from ssp_keras.networks import build_generator

    (tmp_path / "a").mkdir()
    build_generator(tiny_config(**SCHEDULE)).save(tmp_path / "a" / "generator.keras")
    code, error = _in_process(capsys, "train", "--data", dataset, "--preset", "lite", "--image-size", 64,
                              "--iu-patch-sizes", 16, 32, "--epochs", 1, "--steps-per-epoch", 1,
                              "--init-from", tmp_path / "a", "--out", tmp_path / "c")
    assert code == 2 and "architecture differs" in error and "Traceback" not in error
    assert not (tmp_path / "c" / "generator.keras").exists()


def test_the_backend_comes_from_the_flag_then_keras_backend_then_the_config(monkeypatch, tmp_path):
    """``--backend`` over ``$KERAS_BACKEND`` over the configuration's ``train.backend`` (default
    TensorFlow), recorded in the config; a backend Keras cannot switch to in this process (it is
    loaded on TensorFlow here) or one ssp-net does not run on is one clear error."""
    from ssp_keras.cli.main import build_parser
    from ssp_keras.cli.options import config_from_args
    from ssp_keras.errors import InputError

    def backend(*flags, config=None):
        argv = ["train", "--data", "d", "--out", "o", *flags] + (["--config", str(config)] if config else [])
        return config_from_args(build_parser().parse_args(argv)).train.backend

    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backend() == "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert backend("--backend", "tensorflow") == "tensorflow"
    tiny_config(**{"train.backend": "jax"}).to_json(str(tmp_path / "jax.json"))
    with pytest.raises(InputError, match="backend 'jax' requested, but Keras is already loaded on the 'tensorflow'"):
        backend("--backend", "jax")
    monkeypatch.delenv("KERAS_BACKEND")
    with pytest.raises(InputError, match="already loaded"):  # KERAS_BACKEND unset: the file's
        backend(config=tmp_path / "jax.json")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert backend(config=tmp_path / "jax.json") == "tensorflow"  # the environment over the file
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    with pytest.raises(ValueError, match="KERAS_BACKEND='torch': ssp-net runs on the backends"):
        backend()


def test_fit_progress_is_one_line_per_epoch_when_the_output_is_not_a_terminal(monkeypatch):
    import io

    from ssp_keras.cli.train import _fit_verbosity

    monkeypatch.setattr("sys.stdout", io.StringIO())  # a log file or pipe: no carriage-return bar
    assert _fit_verbosity(None) == 2
    assert _fit_verbosity(1) == 1 and _fit_verbosity(0) == 0  # an explicit --verbose-fit wins

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdout", Terminal())
    assert _fit_verbosity(None) == 1


def test_init_from_grows_a_narrower_generator(dataset, tmp_path, capsys):
    """Fine-tuning a generator saved without `generator.full_resolution_skip` in a run with it, and
    then with a wider last decoder stage: the weights are copied, new channels' outgoing weights
    start at 0, so G starts as the saved G."""
    from ssp_keras.errors import InputError
    from ssp_keras.networks import build_generator
    from ssp_keras.training.trainer import _load_generator_weights
    from tiny import randomised

    (tmp_path / "a").mkdir()
    saved = randomised(build_generator(tiny_config(**SCHEDULE)), seed=3)
    saved.save(tmp_path / "a" / "generator.keras")
    grown = build_generator(tiny_config(**SCHEDULE, **{"generator.full_resolution_skip": True}))
    _load_generator_weights(grown, str(tmp_path / "a"))
    assert "grown to this configuration (full-resolution skip False -> True" in capsys.readouterr().out
    images = np.random.default_rng(0).random((1, 64, 64, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(grown(images)), np.asarray(saved(images)), atol=1e-6)
    back = build_generator(tiny_config(**SCHEDULE))  # a skip cannot be taken away
    (tmp_path / "b").mkdir()
    grown.save(tmp_path / "b" / "generator.keras")
    with pytest.raises(InputError, match="architecture differs"):
        _load_generator_weights(back, str(tmp_path / "b"))
    wider = build_generator(tiny_config(**SCHEDULE, **{"generator.full_resolution_skip": True,
                                                       "generator.decoder_widths": (8, 8, 4, 4, 12)}))
    _load_generator_weights(wider, str(tmp_path / "b"))  # a wider last stage, as for a wider lite
    assert "decoder widths [8, 8, 4, 4, 4] -> [8, 8, 4, 4, 12]" in capsys.readouterr().out
    np.testing.assert_allclose(np.asarray(wider(images)), np.asarray(saved(images)), atol=1e-6)


def test_interpolate_writes_the_generator_between_start_and_end(tmp_path, monkeypatch, capsys):
    """``ssp-net interpolate START END --weight W --out DIR``: the interpolated generator, END's
    config and a record; an existing result is not replaced; bad weights and architectures are one line."""
    from ssp_keras.networks import build_generator, interpolate_generators
    from helpers import run_cli
    from tiny import randomised

    start = randomised(build_generator(tiny_config()), seed=11)
    start.save(tmp_path / "start.keras")
    wide = tiny_config(**{"generator.full_resolution_skip": True, "generator.decoder_widths": (8, 8, 4, 4, 12)})
    end = randomised(build_generator(wide), seed=12)
    (tmp_path / "end").mkdir()
    end.save(tmp_path / "end" / "generator.keras")
    wide.to_json(str(tmp_path / "end" / "config.json"))
    interpolate = lambda *argv: run_cli(monkeypatch, ["interpolate", *map(str, argv)], ("interpolate",))  # noqa: E731

    assert interpolate(tmp_path / "start.keras", tmp_path / "end", "--weight", "0.4", "--out", tmp_path / "mid") == 0
    assert "start.keras + 0.4 x" in capsys.readouterr().out
    written = keras.saving.load_model(tmp_path / "mid" / "generator.keras", compile=False)
    images = np.random.default_rng(0).random((1, 64, 64, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(written(images)), np.asarray(interpolate_generators(start, end, 0.4)(images)),
                               atol=1e-6)
    assert (tmp_path / "mid" / "config.json").read_bytes() == (tmp_path / "end" / "config.json").read_bytes()
    assert json.loads((tmp_path / "mid" / "interpolation.json").read_text())["weight"] == 0.4
    # a loose .keras file: a config.json beside it may be another model's, and is not copied
    end.save(tmp_path / "loose.keras")
    (tmp_path / "config.json").write_text("{}")
    assert interpolate(tmp_path / "start.keras", tmp_path / "loose.keras", "--weight", "0.4", "--out",
                       tmp_path / "mid2") == 0
    assert not (tmp_path / "mid2" / "config.json").exists()

    assert interpolate(tmp_path / "start.keras", tmp_path / "end", "--weight", "0.5", "--out", tmp_path / "mid") == 2
    assert "generator.keras' exists" in capsys.readouterr().err
    assert interpolate(tmp_path / "start.keras", tmp_path / "end", "--weight", "1.5", "--out", tmp_path / "x") == 2
    assert "--weight must be a number in [0.0, 1.0], got 1.5" in capsys.readouterr().err
    assert interpolate(tmp_path / "end", tmp_path / "start.keras", "--weight", "0.5", "--out", tmp_path / "x") == 2
    assert "cannot interpolate from" in capsys.readouterr().err
    assert not (tmp_path / "x" / "generator.keras").exists()
