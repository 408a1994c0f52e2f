"""SavedModel export: versions, atomicity, signatures, and agreement with local inference."""

import os
import pathlib
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ssp_keras.errors import InputError  # noqa: E402
from ssp_keras.inference import enhance_array  # noqa: E402
from ssp_keras.serving.client import decode_png, encode_png  # noqa: E402
from ssp_keras.serving.export import WARMUP_FILE, export_saved_model, next_version  # noqa: E402
from test_inference import random_image, run_cli, tiny_generator  # noqa: E402


@pytest.fixture(scope="module")
def generator():
    return tiny_generator(1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, generator):
    """One export (version 1) shared by the signature tests, and its loaded SavedModel."""
    base = tmp_path_factory.mktemp("serving")
    result = export_saved_model(generator, str(base), name="ssp_net")
    return result, tf.saved_model.load(result.path)


def quantised(image, levels=255):
    return np.round(np.clip(image, 0, 1) * levels)


# ------------------------------------------------------------------------------ versions
def export_while_polling(generator, base, **options):
    """Exports while a thread lists the model folder like TF Serving's poller does.

    Returns the export result and the problems seen: integer-named folders that lacked a file.
    """
    model_dir = base / "ssp_net"
    model_dir.mkdir(parents=True, exist_ok=True)
    problems, done = [], threading.Event()

    def poll():
        while True:
            finished = done.is_set()
            for entry in os.listdir(model_dir):
                if not entry.isdigit():
                    continue  # TF Serving ignores non-integer names (our staging folder)
                required = ["saved_model.pb", "variables/variables.index", WARMUP_FILE]
                missing = [name for name in required if not (model_dir / entry / name).exists()]
                if missing:
                    problems.append((entry, missing))
            if finished:
                return
            time.sleep(0.001)  # let the export run; TF Serving itself polls about once a second

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        result = export_saved_model(generator, str(base), **options)
    finally:
        done.set()
        reader.join()
    return result, problems


def test_versions_count_up_atomically_and_are_never_overwritten(generator, tmp_path):
    first = export_saved_model(generator, str(tmp_path))
    second, problems = export_while_polling(generator, tmp_path)
    assert (first.version, second.version) == (1, 2)
    assert problems == []  # the poller never saw a version folder without its files
    assert sorted(os.listdir(tmp_path / "ssp_net")) == ["1", "2"]  # no staging folder left behind
    assert next_version(str(tmp_path / "ssp_net")) == 3
    stamp = os.path.getmtime(tmp_path / "ssp_net" / "1" / "saved_model.pb")
    with pytest.raises(InputError, match="version 1 of model 'ssp_net' already exists"):
        export_saved_model(generator, str(tmp_path), version=1)
    assert os.path.getmtime(tmp_path / "ssp_net" / "1" / "saved_model.pb") == stamp
    assert sorted(os.listdir(tmp_path / "ssp_net")) == ["1", "2"]


def test_bad_names_and_versions(generator, tmp_path):
    with pytest.raises(InputError, match="invalid model name"):
        export_saved_model(generator, str(tmp_path), name="../escape")
    with pytest.raises(InputError, match="invalid version"):
        export_saved_model(generator, str(tmp_path), version=0)


# ------------------------------------------------------------------------------ signatures
def test_signature_names_dtypes_and_shapes(exported):
    _, loaded = exported
    signatures = loaded.signatures
    assert {"serving_default", "enhance_float", "enhance_png"} <= set(signatures)

    def spec(name):
        _, inputs = signatures[name].structured_input_signature
        return inputs, signatures[name].structured_outputs

    inputs, outputs = spec("serving_default")
    assert inputs["images"].dtype == tf.uint8 and inputs["images"].shape.as_list() == [None, None, None, 1]
    assert outputs["enhanced"].dtype == tf.uint8 and outputs["enhanced"].shape.as_list() == [None, None, None, 1]
    inputs, outputs = spec("enhance_float")
    assert inputs["images"].dtype == tf.float32 and outputs["enhanced"].dtype == tf.float32
    inputs, outputs = spec("enhance_png")
    assert inputs["image_bytes"].dtype == tf.string and inputs["image_bytes"].shape.as_list() == [None]
    assert outputs["png_bytes"].dtype == tf.string and outputs["png_bytes"].shape.as_list() == [None]


def test_saved_model_cli_lists_the_signatures(exported):
    result, _ = exported
    cli = pathlib.Path(sys.executable).with_name("saved_model_cli")
    if not cli.exists():
        pytest.skip("saved_model_cli is not installed beside this Python")
    shown = subprocess.run(
        [str(cli), "show", "--dir", result.path, "--all"], capture_output=True, text=True, check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout
    for expected in (
        "signature_def['serving_default']",
        "signature_def['enhance_float']",
        "signature_def['enhance_png']",
        "inputs['images'] tensor_info:\n        dtype: DT_UINT8\n        shape: (-1, -1, -1, 1)",
        "inputs['image_bytes'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)",
        "outputs['png_bytes']",
        "outputs['enhanced'] tensor_info:\n        dtype: DT_FLOAT",
    ):
        assert expected in shown


def test_warmup_request_is_a_serving_default_request(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    result, _ = exported
    records = list(tf.data.TFRecordDataset(os.path.join(result.path, WARMUP_FILE)).as_numpy_iterator())
    log = prediction_log_pb2.PredictionLog.FromString(records[0])
    request = log.predict_log.request
    assert request.model_spec.signature_name == "serving_default"
    assert tf.make_ndarray(request.inputs["images"]).dtype == np.uint8


# ------------------------------------------------------------------------------ outputs
def test_serving_default_matches_local_inference(exported, generator):
    _, loaded = exported
    image = quantised(random_image(257, 301)) / 255
    served = loaded.signatures["serving_default"](images=tf.constant(np.uint8(image * 255)[None]))["enhanced"]
    local = quantised(enhance_array(generator, image.astype(np.float32)))
    assert served.shape == (1, 257, 301, 1) and served.dtype == tf.uint8
    assert np.abs(served.numpy()[0].astype(int) - local).max() <= 1


def test_enhance_float_matches_local_inference(exported, generator):
    _, loaded = exported
    batch = np.stack([random_image(45, 97, seed=seed) for seed in (1, 2)])
    served = loaded.signatures["enhance_float"](images=tf.constant(batch))["enhanced"].numpy()
    np.testing.assert_allclose(served, enhance_array(generator, batch), atol=1e-5)


def test_enhance_png_handles_mixed_sizes_and_16_bit(exported, generator):
    _, loaded = exported
    images = [random_image(33, 50, seed=3), random_image(70, 41, seed=4), random_image(40, 40, seed=5)]
    depths = [8, 8, 16]
    requests = [encode_png(image, depth) for image, depth in zip(images, depths)]
    outputs = loaded.signatures["enhance_png"](image_bytes=tf.constant(requests))["png_bytes"].numpy()
    for image, depth, request, output in zip(images, depths, requests, outputs):
        levels = 2**depth - 1
        assert output[:8] == b"\x89PNG\r\n\x1a\n" and output[24] == depth  # IHDR bit depth
        sent, received = decode_png(request), decode_png(output)
        assert received.shape == image.shape
        local = quantised(enhance_array(generator, sent), levels)
        assert np.abs(quantised(received, levels) - local).max() <= 1


def test_enhance_png_rejects_garbage_bytes(exported):
    _, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures["enhance_png"](image_bytes=tf.constant([b"definitely not an image"]))


# ------------------------------------------------------------------------------ CLI
def test_cli_export(generator, tmp_path, monkeypatch, capsys):
    generator.save(tmp_path / "generator.keras")
    base = tmp_path / "models"
    argv = ["export", "--model", str(tmp_path), "--base", str(base), "--name", "nerves", "--no-warmup"]
    assert run_cli(monkeypatch, argv) == 0
    assert "version 1" in capsys.readouterr().out
    assert (base / "nerves" / "1" / "saved_model.pb").is_file()
    assert run_cli(monkeypatch, argv + ["--version", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("ssp-net export: error: version 1 of model 'nerves' already exists") and "\n" not in error


@pytest.mark.parametrize("file_format, mode", [("PNG", "RGBA"), ("BMP", "RGB"), ("GIF", "L"), ("JPEG", "RGB")])
def test_enhance_png_converts_formats_and_channels_like_local_reading(exported, generator, tmp_path, file_format, mode):
    from PIL import Image

    from ssp_keras.data.io import read_image

    _, loaded = exported
    path = str(tmp_path / f"image.{file_format.lower()}")
    colour = np.uint8(quantised(random_image(40, 50, 3, seed=6)))
    Image.fromarray(colour).convert(mode).save(path, file_format)
    with open(path, "rb") as stream:
        output = loaded.signatures["enhance_png"](image_bytes=tf.constant([stream.read()]))["png_bytes"].numpy()[0]
    local = quantised(enhance_array(generator, read_image(path, 1)))
    assert np.abs(quantised(decode_png(output)) - local).max() <= 1
