"""ONNX export (``ssp-net export --format onnx``): onnxruntime equals Keras on any image size.

tf2onnx and onnxruntime (the ``onnx`` extra) are in the dev extras: the tests import them, so a
broken install fails here instead of skipping. The message users see without them is tested by
hiding tf2onnx.
"""

import sys

import numpy as np
import pytest


from ssp_keras.errors import InputError
from ssp_keras.inference.enhance import enhance_tensor
from ssp_keras.serving import onnx_export
from helpers import run_cli
from tiny import random_tiny_config_generator


@pytest.fixture(scope="module")
def onnx_tools():
    import onnxruntime
    import tf2onnx

    return tf2onnx, onnxruntime


@pytest.fixture(scope="module")
def generator():
    """The tiny generator with random weights: untrained, it would be the identity (zero last conv)."""
    return random_tiny_config_generator()


@pytest.fixture(scope="module")
def exported(onnx_tools, generator, tmp_path_factory):
    base = tmp_path_factory.mktemp("onnx")
    result = onnx_export.export_onnx(generator, str(base), name="ssp_net")
    return base, result, onnx_export.onnx_session(result.path)


@pytest.mark.parametrize("batch, height, width", [(1, 37, 53), (2, 64, 96), (1, 5, 200)])
def test_onnxruntime_equals_keras_on_any_size(exported, generator, batch, height, width):
    _, _, session = exported
    images = np.random.default_rng(height).random((batch, height, width, 1), dtype=np.float32)
    expected = enhance_tensor(generator, images).numpy()
    (enhanced,) = session.run([onnx_export.OUTPUT_ENHANCED], {onnx_export.INPUT_IMAGES: images})
    assert enhanced.shape == (batch, height, width, 1) and enhanced.dtype == np.float32
    # Not vacuous: the randomised generator changes the image.
    assert np.abs(expected - images).max() > 0.05
    assert np.abs(enhanced - expected).max() < 1e-4


def test_layout_signature_and_self_check(exported):
    base, result, session = exported
    assert result.path == str(base / "ssp_net" / "1" / onnx_export.ONNX_FILE) and result.version == 1
    assert [entry.name for entry in (base / "ssp_net").iterdir()] == ["1"]  # no staging folder left
    assert result.max_abs_difference is not None and result.max_abs_difference < 1e-4
    (inputs,), (outputs,) = session.get_inputs(), session.get_outputs()
    assert inputs.name == "images" and inputs.type == "tensor(float)"
    assert outputs.name == "enhanced" and outputs.type == "tensor(float)"
    # N, H and W are free (symbolic), C is fixed.
    assert [isinstance(dim, str) or dim is None for dim in inputs.shape] == [True, True, True, False]
    assert inputs.shape[3] == 1


def test_versions_are_never_overwritten(exported, generator):
    base, _, _ = exported
    second = onnx_export.export_onnx(generator, str(base), name="ssp_net", check=False)
    assert second.version == 2 and second.max_abs_difference is None
    with pytest.raises(InputError, match="version 1 of model 'ssp_net' already exists"):
        onnx_export.export_onnx(generator, str(base), name="ssp_net", version=1)


def test_cli_export_onnx(onnx_tools, generator, tmp_path, monkeypatch, capsys):
    generator.save(tmp_path / "generator.keras")
    base = tmp_path / "models"
    argv = ["export", "--format", "onnx", "--model", str(tmp_path), "--base", str(base), "--name", "nerves"]
    assert run_cli(monkeypatch, argv) == 0
    output = capsys.readouterr().out
    assert "ONNX model 'nerves' version 1" in output and "onnxruntime matches Keras" in output
    assert (base / "nerves" / "1" / "model.onnx").is_file()
    assert run_cli(monkeypatch, argv + ["--version", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("ssp-net export: error: version 1 of model 'nerves' already exists") and "\n" not in error


def test_cli_without_the_onnx_extra_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import tf2onnx now raises ImportError
    argv = ["export", "--format", "onnx", "--model", "ccmid-lite", "--base", str(tmp_path)]
    assert run_cli(monkeypatch, argv) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert error.startswith("ssp-net export: error: --format onnx needs tf2onnx and onnxruntime")
    assert 'pip install "ssp-keras[onnx]"' in error
    assert not any(tmp_path.iterdir())


def test_format_flag_defaults_to_savedmodel():
    from ssp_keras.cli.main import build_parser

    parser = build_parser()
    assert parser.parse_args(["export", "--model", "m", "--base", "b"]).format == "savedmodel"
    assert parser.parse_args(["export", "--model", "m", "--base", "b", "--format", "onnx"]).format == "onnx"
    with pytest.raises(SystemExit):
        parser.parse_args(["export", "--model", "m", "--base", "b", "--format", "tflite"])


def test_a_version_is_readable_by_a_server_running_as_another_user(onnx_tools, generator, tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        result = onnx_export.export_onnx(generator, str(tmp_path), name="m", check=False)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(os.path.dirname(result.path)).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(result.path).st_mode) == 0o644
