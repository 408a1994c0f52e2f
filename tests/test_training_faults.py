"""Training under faults: a diverging run saves nothing non-finite, a resume forgets what a killed
process recorded after its checkpoint, a run folder has one owner, and a resume on other images is
refused."""

import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from ssp_keras.cli.main import main
from ssp_keras.data.synthetic import generate_dataset
from ssp_keras.errors import NonFiniteTrainingError
from ssp_keras.training import build_optimizers, build_sspnet
from ssp_keras.training.callbacks import NonFiniteLossGuard, TrainingStateCheckpoint, list_states, save_training_state
from helpers import copy_run, hold_folder, read_history, stale_temporary_name, train_in_process
from tiny import tiny_config, tiny_generator


def _train(capsys, dataset, config_file, run_dir, *extra, data=None):
    """`helpers.train_in_process`: its exit status and what it wrote to stderr."""
    capsys.readouterr()
    code = train_in_process(dataset, config_file, run_dir, *extra, data=data)
    return code, capsys.readouterr().err


def _history_epochs(run_dir):
    return [int(row["epoch"]) for row in read_history(run_dir)]


# ------------------------------------------------------------------------------ case 1: NaN guard
def test_a_diverging_run_saves_no_checkpoint_and_no_generator(dataset, tmp_path, capsys):
    config = tmp_path / "diverging.json"
    tiny_config(**{"train.image_grid_size": 1, "train.lr_warmup_start": 1e6, "train.lr_peak": 1e6}).to_json(str(config))
    run_dir = tmp_path / "run"
    # One step per epoch: the step's losses are finite, its update is not (Adam's moments overflow).
    code, error = _train(capsys, dataset, config, run_dir, "--epochs", 2)
    lines = error.splitlines()
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith("ssp-net train: error: training stopped: at the end of epoch 1, ")
    assert "NaN or infinite (first: '" in lines[0] and "no checkpoint was written" in lines[0]
    assert list_states(str(run_dir / "checkpoints")) == []
    assert not (run_dir / "generator.keras").exists()
    assert _history_epochs(run_dir) == []  # the epoch is not recorded either


class _PoisonAtEpoch(keras.callbacks.Callback):
    """Makes one generator weight NaN after the last step of ``epoch`` (0-based)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            variable = self.model.generator.trainable_variables[0]
            variable.assign(np.full(variable.shape, np.nan, "float32"))


def _tiny_model():
    config = tiny_config()
    keras.utils.set_random_seed(0)
    model = build_sspnet(config)
    model.compile(*build_optimizers(config, 2))
    rng = np.random.default_rng(0)
    images = rng.random((2, 64, 64, 1), np.float32), rng.random((2, 64, 64, 1), np.float32)
    return model, tf.data.Dataset.from_tensors(images).repeat()


def test_the_last_finite_checkpoint_is_kept_when_a_later_epoch_diverges(tmp_path):
    model, dataset = _tiny_model()
    directory = str(tmp_path / "checkpoints")
    # The poison runs before the guard's epoch-end check, as a diverged update would.
    callbacks = [_PoisonAtEpoch(1), NonFiniteLossGuard(checkpoint_dir=directory), TrainingStateCheckpoint(directory)]
    with pytest.raises(NonFiniteTrainingError, match=r"at the end of epoch 2, 1 variable is NaN or infinite "
                       r"\(first: 'generator: .*'\).*state-epoch0001\.npz, is finite and kept"):
        model.fit(dataset, epochs=3, steps_per_epoch=2, callbacks=callbacks, verbose=0)
    assert [os.path.basename(path) for path in list_states(directory)] == ["state-epoch0001.npz"]
    with np.load(list_states(directory)[0]) as saved:
        assert all(np.all(np.isfinite(saved[name])) for name in saved.files if saved[name].dtype.kind == "f")


def test_a_checkpoint_with_a_non_finite_variable_is_never_written(tmp_path):
    model, _ = _tiny_model()
    variable = model.discriminator_optimizer.variables[-1]
    variable.assign(np.full(variable.shape, np.inf, "float32"))
    with pytest.raises(NonFiniteTrainingError, match=r"not writing the checkpoint .* of epoch 4: 1 variable is NaN"):
        save_training_state(model, str(tmp_path / "state-epoch0004.npz"), 4)
    assert os.listdir(tmp_path) == []


def test_enhance_refuses_a_generator_with_nan_weights(tmp_path, capsys):
    generator = tiny_generator(1)
    generator.weights[0].assign(np.full(generator.weights[0].shape, np.nan, "float32"))
    generator.save(tmp_path / "diverged.keras")
    (tmp_path / "in").mkdir()
    from ssp_keras.data.io import write_image

    write_image(str(tmp_path / "in" / "a.png"), np.full((40, 40), 0.5, "float32"))
    capsys.readouterr()
    assert main(["enhance", "--model", str(tmp_path / "diverged.keras"), str(tmp_path / "in"),
                 "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "holds NaN or infinite weights" in error and "diverged.keras" in error
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ cases 2, 3, 13: the run folder
@pytest.fixture(scope="module")
def finished_run(dataset, config_file, tmp_path_factory):
    """A run of 2 epochs (shared: the tests copy it before changing anything)."""
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    assert train_in_process(dataset, config_file, run_dir, "--epochs", 2) == 0
    return run_dir


def test_a_resume_forgets_what_a_killed_process_recorded_after_its_checkpoint(finished_run, dataset, config_file,
                                                                             tmp_path, capsys):
    run_dir = copy_run(finished_run, tmp_path)
    # As after kill -9 between the history row / preview of epoch 2 and its checkpoint, with the
    # temporary files of the atomic writes it was doing.
    os.remove(run_dir / "checkpoints" / "state-epoch0002.npz")
    stale = [run_dir / "checkpoints" / (stale_temporary_name("state-epoch0002") + ".npz"),
             run_dir / (stale_temporary_name("generator") + ".keras"), run_dir / "previews" / stale_temporary_name("epoch0002.png")]
    for path in stale:
        path.write_bytes(b"half written")
    assert _history_epochs(run_dir) == [0, 1]

    code, error = _train(capsys, dataset, config_file, run_dir, "--epochs", 2)
    assert code == 0, error
    assert _history_epochs(run_dir) == [0, 1]  # epoch 2 (index 1) once: the new one
    assert not any(path.exists() for path in stale)
    assert not [name for _, _, names in os.walk(run_dir) for name in names if name.startswith(".tmp-")]
    with np.load(run_dir / "checkpoints" / "state-epoch0002.npz") as state:
        assert int(state["__epoch__"]) == 2


def test_a_run_of_an_older_version_resumes_with_its_history_columns_in_place(finished_run, dataset, config_file,
                                                                             tmp_path, capsys):
    """history.csv written before ``shading_loss`` existed: the resumed rows land under the right names."""
    import csv

    run_dir = copy_run(finished_run, tmp_path)
    with open(run_dir / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    old_header = [name for name in rows[0] if name != "shading_loss"]
    with open(run_dir / "history.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=old_header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    code, error = _train(capsys, dataset, config_file, run_dir, "--epochs", 3)
    assert code == 0, error
    with open(run_dir / "history.csv", newline="") as handle:
        table = list(csv.reader(handle))
    assert "shading_loss" in table[0] and {len(row) for row in table} == {len(table[0])}
    resumed = [dict(zip(table[0], row)) for row in table[1:]]
    assert [row["epoch"] for row in resumed] == ["0", "1", "2"]
    assert [row["shading_loss"] for row in resumed] == ["NA", "NA", "0.0"]
    for before, after in zip(rows, resumed):  # the old rows keep their values under their names
        assert all(after[name] == before[name] for name in old_header)
    assert 0.0 < float(resumed[2]["te_loss"]) < 1.0 and float(resumed[2]["d_loss"]) > 0.0


def test_a_run_folder_has_one_owner_and_a_killed_owner_does_not_keep_it(finished_run, dataset, config_file,
                                                                       tmp_path, capsys):
    run_dir = copy_run(finished_run, tmp_path)
    holder = hold_folder(run_dir, "ssp-net train")
    try:
        before = sorted(os.listdir(run_dir))
        code, error = _train(capsys, dataset, config_file, run_dir, "--epochs", 3)
        lines = error.splitlines()
        assert code == 2 and len(lines) == 1, lines
        assert f"--out '{run_dir}' is in use by another process (pid {holder.pid}" in lines[0]
        assert "ssp-net train" in lines[0] and sorted(os.listdir(run_dir)) == before
        assert _history_epochs(run_dir) == [0, 1]
    finally:
        holder.kill()  # SIGKILL: the lock goes with the process
        holder.wait()
    code, error = _train(capsys, dataset, config_file, run_dir, "--epochs", 3)
    assert code == 0, error
    assert _history_epochs(run_dir) == [0, 1, 2]


def test_a_resume_on_other_images_is_refused_and_a_moved_folder_is_not(finished_run, dataset, config_file,
                                                                      tmp_path, capsys, caplog):
    run_dir = copy_run(finished_run, tmp_path)
    recorded = json.loads((run_dir / "config.json").read_text())["training_data"]
    assert recorded["lq"]["files"] == 2 and len(recorded["lq"]["fingerprint"]) == 64
    assert recorded["lq"]["sources"] == [str(dataset / "trainA")]

    other = tmp_path / "other"
    generate_dataset(str(other), count=3, size=64, seed=5, test_count=1)
    before = {name: (run_dir / name).read_bytes() for name in ("config.json", "history.csv")}
    code, error = _train(capsys, dataset, config_file, run_dir, "--epochs", 3,
                         data=["--lq", str(other / "trainA"), "--hq", str(dataset / "trainB")])
    lines = error.splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert f"was trained on other LQ images: 2 files in '{dataset / 'trainA'}' -> 3 files in '{other / 'trainA'}'" \
        in lines[0] and f"--init-from {run_dir}" in lines[0]
    assert {name: (run_dir / name).read_bytes() for name in before} == before

    moved = tmp_path / "moved"
    shutil.copytree(dataset, moved)
    code, error = _train(capsys, dataset, config_file, run_dir, "--epochs", 3, data=["--data", str(moved)])
    assert code == 0, error
    assert any("images moved" in record.getMessage() for record in caplog.records)
