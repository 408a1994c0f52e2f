"""A run directory keeps its settings (a refused resume writes nothing), `--out` that is a file, and
the warnings about the training data (same folder for LQ and HQ, images smaller than the crops)."""

import json
import logging
import os

import numpy as np
import pytest

from ssp_keras.cli.main import main
from ssp_keras.data.io import write_image
from ssp_keras.errors import InputError
from ssp_keras.training.trainer import check_run_directory, training_data_warnings
from helpers import copy_run, file_contents, train_in_process
from tiny import tiny_config


@pytest.fixture(scope="module")
def finished_run(dataset, config_file, tmp_path_factory):
    """A run of 1 epoch (shared: the tests copy it before changing anything)."""
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    assert train_in_process(dataset, config_file, run_dir, "--epochs", 1) == 0
    return run_dir


def test_a_resume_with_other_settings_is_refused_and_writes_nothing(finished_run, dataset, config_file, tmp_path,
                                                                    capsys):
    run_dir = copy_run(finished_run, tmp_path)
    before = file_contents(run_dir)
    assert train_in_process(dataset, config_file, run_dir, "--epochs", 2, "--seed", 7) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1  # one line
    assert "train.seed 0 -> 7" in error and f"--config {run_dir / 'config.json'}" in error
    assert "train.epochs" not in error  # extending the run is allowed
    assert file_contents(run_dir) == before  # config.json byte-identical, no new file

    # Another preset: many fields differ; the first are named, the rest counted.
    assert main(["train", "--data", str(dataset), "--preset", "lite", "--out", str(run_dir)]) == 2
    error = capsys.readouterr().err
    assert 'generator.encoder_widths [4, 4, 8, 8] -> [16, 32, 64, 128]' in error and "more" in error
    assert file_contents(run_dir) == before


def test_a_larger_epochs_resumes_and_records_it(finished_run, dataset, config_file, tmp_path, capsys):
    run_dir = copy_run(finished_run, tmp_path)
    assert train_in_process(dataset, config_file, run_dir, "--epochs", 2) == 0
    assert "Resuming from the checkpoint of epoch 1" in capsys.readouterr().out
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["train"]["epochs"] == 2
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["state-epoch0001.npz", "state-epoch0002.npz"]


def test_a_hand_edited_config_is_compared_not_replaced(finished_run, dataset, config_file, tmp_path, capsys):
    run_dir = copy_run(finished_run, tmp_path)
    path = run_dir / "config.json"
    values = json.loads(path.read_text())
    values["loss"]["alpha"] = 7.0
    path.write_text(json.dumps(values))
    edited = path.read_bytes()
    assert train_in_process(dataset, config_file, run_dir, "--epochs", 2) == 2
    assert "loss.alpha 7.0 -> 5.1" in capsys.readouterr().err
    assert path.read_bytes() == edited

    path.write_text("{ not json")
    with pytest.raises(InputError, match="config.json is not a valid configuration"):
        check_run_directory(str(run_dir), tiny_config())
    assert path.read_text() == "{ not json"


def test_the_stored_config_itself_resumes(finished_run, tmp_path):
    # What `--config RUN/config.json` gives: the stored settings, "resolved" block and all.
    from ssp_keras.config import SSPNetConfig

    run_dir = copy_run(finished_run, tmp_path)
    stored = SSPNetConfig.from_file(str(run_dir / "config.json"))
    check_run_directory(str(run_dir), stored.replace(**{"train.epochs": 5, "train.image_grid_size": 2}))
    with pytest.raises(InputError, match="data.image_size 64 -> 96"):
        check_run_directory(str(run_dir), stored.replace(**{"data.image_size": 96}))


def test_out_naming_an_existing_file_is_refused_before_any_work(dataset, config_file, tmp_path, capsys):
    out = tmp_path / "taken.txt"
    out.write_text("mine")
    assert train_in_process(dataset, config_file, out, "--epochs", 1) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "'" + str(out) + "' is an existing file" in error
    assert out.read_text() == "mine"
    with pytest.raises(InputError, match="is an existing file, not a folder"):
        check_run_directory(str(out), tiny_config())


# ------------------------------------------------------------------------------ data warnings
def _images(folder, count, size):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        write_image(str(folder / f"{index}.png"), rng.random((size[0], size[1], 1)).astype(np.float32))
    return sorted(str(path) for path in folder.iterdir())


def test_data_warnings(tmp_path):
    big = _images(tmp_path / "big", 2, (64, 80))
    other = _images(tmp_path / "other", 2, (64, 64))
    small = _images(tmp_path / "small", 2, (40, 96))
    assert training_data_warnings(big, other, 64) == []
    same = training_data_warnings(big, list(big), 64)
    assert len(same) == 1 and "the LQ and HQ training images are the same 2 files" in same[0]
    overlap = training_data_warnings(big, other + big[:1], 64)
    assert len(overlap) == 1 and f"1 training image(s) are both LQ and HQ, e.g. '{big[0]}'" in overlap[0]
    tiny = training_data_warnings(small, other, 64)
    assert len(tiny) == 1 and f"2 of 4 training images are smaller than the 64-pixel" in tiny[0]
    assert f"'{small[0]}' (96x40)" in tiny[0]


def test_a_run_on_one_small_folder_warns_and_records_it(tmp_path, config_file, caplog):
    folder = tmp_path / "images"
    _images(folder, 2, (48, 64))
    run_dir = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        assert main(["train", "--lq", str(folder), "--hq", str(folder), "--config", str(config_file), "--epochs", "1",
                     "--steps-per-epoch", "1", "--verbose-fit", "0", "--out", str(run_dir)]) == 0
    warned = [record.getMessage() for record in caplog.records if record.name == "ssp_keras.training.trainer"]
    recorded = json.loads((run_dir / "config.json").read_text())["resolved"]["warnings"]
    assert len(recorded) == 2 and recorded == [line for line in warned if line in recorded]
    assert "same 2 files" in recorded[0] and "smaller than the 64-pixel training crops" in recorded[1]


def test_a_generator_trained_in_mixed_bfloat16_is_saved_to_compute_in_float32(dataset, config_file, tmp_path):
    from ssp_keras.inference.loading import load_generator

    run_dir = tmp_path / "bf16"
    assert train_in_process(dataset, config_file, run_dir, "--epochs", 1, "--precision", "mixed_bfloat16") == 0
    saved = load_generator(str(run_dir))
    assert saved.dtype_policy.name == "float32"
    assert {layer.dtype_policy.name for layer in saved.layers} == {"float32"}
    assert all(weight.dtype == "float32" for weight in saved.weights)
