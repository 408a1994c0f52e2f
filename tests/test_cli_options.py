"""Every numeric and address option of every command is checked before any work starts (one line,
exit 2, naming the option), and configuration files layer as ``train --help`` says."""

import json

import pytest

from ssp_keras.cli.main import main

# (command line, the option the one-line error must name). Inputs need not exist: the option is
# refused before anything else is looked at.
BAD_OPTIONS = [
    (["predict", "--server", "localhost:8500", "--timeout", "0", "a.png", "--out", "o"], "--timeout"),
    (["predict", "--server", "localhost:8500", "--timeout", "-1", "a.png", "--out", "o"], "--timeout"),
    (["predict", "--server", "localhost:8500", "--timeout", "nan", "a.png", "--out", "o"], "--timeout"),
    (["predict", "--server", "localhost:8500", "--timeout", "inf", "a.png", "--out", "o"], "--timeout"),
    (["predict", "--server", "localhost:8500", "--retries", "-1", "a.png", "--out", "o"], "--retries"),
    (["predict", "--server", "localhost:8500", "--backoff", "-1", "a.png", "--out", "o"], "--backoff"),
    (["predict", "--server", "localhost:8500", "--backoff", "nan", "a.png", "--out", "o"], "--backoff"),
    (["predict", "--server", "localhost:8500", "--max-message-mb", "nan", "a.png", "--out", "o"], "--max-message-mb"),
    (["predict", "--server", "localhost:8500", "--max-message-mb", "0", "a.png", "--out", "o"], "--max-message-mb"),
    (["predict", "--server", "localhost:8500", "--max-message-mb", "4096", "a.png", "--out", "o"], "--max-message-mb"),
    (["predict", "--server", "localhost:8500", "--version", "0", "a.png", "--out", "o"], "--version"),
    (["predict", "--server", "localhost", "a.png", "--out", "o"], "--server"),
    (["predict", "--server", "localhost:0", "a.png", "--out", "o"], "--server"),
    (["predict", "--server", "localhost:99999", "a.png", "--out", "o"], "--server"),
    (["predict", "--server", "localhost:http", "a.png", "--out", "o"], "--server"),
    (["predict", "--server", ":8500", "a.png", "--out", "o"], "--server"),
    (["predict", "--server", "::1:8500", "a.png", "--out", "o"], "--server"),
    (["enhance", "--model", "m", "--tile-size", "-5", "a.png", "--out", "o"], "--tile-size"),
    (["enhance", "--model", "m", "--overlap", "-1", "a.png", "--out", "o"], "--overlap"),
    (["enhance", "--model", "m", "--overlap", "1.5", "a.png", "--out", "o"], "--overlap"),
    (["export", "--model", "m", "--base", "b", "--version", "0"], "--version"),
    (["export", "--model", "m", "--base", "b", "--max-pixels", "nan"], "--max-pixels"),
    (["evaluate", "--images", "i", "--out", "o", "--grid-rows", "0"], "--grid-rows"),
    (["train", "--data", "d", "--out", "o", "--epochs", "0"], "--epochs"),
    (["train", "--data", "d", "--out", "o", "--steps-per-epoch", "-2"], "--steps-per-epoch"),
    (["train", "--data", "d", "--out", "o", "--batch-size", "0"], "--batch-size"),
    (["train", "--data", "d", "--out", "o", "--image-size", "-64"], "--image-size"),
    (["train", "--data", "d", "--out", "o", "--iu-patch-sizes", "48", "0"], "--iu-patch-sizes"),
    (["train", "--data", "d", "--out", "o", "--seed", "-1"], "--seed"),
    (["train", "--data", "d", "--out", "o", "--seed", "4294967296"], "--seed"),
    (["train", "--data", "d", "--out", "o", "--cpu-replicas", "-1"], "--cpu-replicas"),
    (["demo", "--out", "o", "--epochs", "nan"], "--epochs"),
    (["segmenter", "train", "--out", "o", "--learning-rate", "nan"], "--learning-rate"),
    (["segmenter", "train", "--out", "o", "--learning-rate", "0"], "--learning-rate"),
    (["segmenter", "train", "--out", "o", "--depth", "0"], "--depth"),
    (["segmenter", "train", "--out", "o", "--seed", "-3"], "--seed"),
]


@pytest.mark.parametrize("argv, option", BAD_OPTIONS, ids=lambda value: " ".join(value)[-45:] if isinstance(value, list) else value)
def test_a_bad_option_value_is_one_line_naming_it_before_any_work(argv, option, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    lines = capsys.readouterr().err.splitlines()
    command = " ".join(argv[:2]) if argv[0] == "segmenter" else argv[0]
    assert len(lines) == 1 and lines[0].startswith(f"ssp-net {command}: error: {option} "), lines
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_the_client_checks_its_arguments_as_the_command_line_does():
    from ssp_keras.serving.client import PredictionClient

    for arguments in ({"timeout": 0.0}, {"timeout": float("nan")}, {"retries": -1}, {"backoff": -1.0},
                      {"max_message_bytes": 0}):
        with pytest.raises(ValueError, match=f"'{next(iter(arguments))}'"):
            PredictionClient("localhost:8500", **arguments)
    with pytest.raises(ValueError, match="HOST:PORT"):
        PredictionClient("localhost")
    assert PredictionClient("[::1]:8500").server == "[::1]:8500"


def test_a_seed_the_random_generators_refuse_is_a_config_error():
    from ssp_keras.config import preset

    with pytest.raises(ValueError, match="train.seed"):
        preset("lite").replace(**{"train.seed": -1})


# ------------------------------------------------------------------------------ configuration layering
def _layered(tmp_path, name, text, *flags):
    import argparse

    from ssp_keras.cli.options import add_config_options, config_from_args

    path = tmp_path / name
    path.write_text(text)
    parser = argparse.ArgumentParser()
    add_config_options(parser)
    return config_from_args(parser.parse_args(["--config", str(path), *flags]))


def test_a_config_file_without_a_preset_layers_on_the_preset_flag(tmp_path):
    config = _layered(tmp_path, "f.json", json.dumps({"train": {"epochs": 3}}), "--preset", "lite")
    assert config.preset == "lite" and config.generator.encoder_block == "basic" and config.train.epochs == 3
    # then the flags on top
    config = _layered(tmp_path, "f.json", json.dumps({"train": {"epochs": 3}}), "--preset", "lite", "--epochs", "5")
    assert config.train.epochs == 5 and config.data.image_size == 256
    # a file naming its preset sets it; --preset may agree with it, not contradict it
    assert _layered(tmp_path, "g.yaml", "preset: lite\ntrain: {epochs: 2}\n").preset == "lite"
    assert _layered(tmp_path, "g.yaml", "preset: lite\n", "--preset", "lite").preset == "lite"
    with pytest.raises(ValueError, match="--preset paper contradicts the preset 'lite'"):
        _layered(tmp_path, "g.yaml", "preset: lite\n", "--preset", "paper")
    # neither names one: paper, as the help says
    assert _layered(tmp_path, "h.json", json.dumps({"train": {"epochs": 3}})).preset == "paper"


@pytest.mark.parametrize("name, text", [("empty.json", ""), ("empty.yaml", ""), ("blank.json", " \n"),
                                        ("comments.yaml", "# nothing yet\n")])
def test_an_empty_config_file_is_refused_in_either_format(tmp_path, capsys, name, text):
    (tmp_path / name).write_text(text)
    for folder in ("trainA", "trainB"):
        (tmp_path / folder).mkdir()
    assert main(["train", "--data", str(tmp_path), "--config", str(tmp_path / name), "--out", str(tmp_path / "run")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"ssp-net train: error: config file '{tmp_path / name}' is empty: it holds no settings "
                     "(write {} for none, or leave out --config)"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name, text", [("none.json", "{}"), ("none.yaml", "{}\n")])
def test_an_explicitly_empty_mapping_means_no_settings_in_either_format(tmp_path, name, text):
    assert _layered(tmp_path, name, text, "--preset", "lite").to_dict() == _layered(
        tmp_path, "lite.json", json.dumps({"preset": "lite"})).to_dict()
