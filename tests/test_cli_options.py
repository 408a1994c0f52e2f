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
