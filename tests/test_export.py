"""SavedModel export: versions, atomicity, signatures, and agreement with local inference."""

import os
import pathlib
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import tensorflow as tf

from ssp_keras.errors import InputError
from ssp_keras.inference import enhance_array
from ssp_keras.serving.client import decode_png, encode_png
from ssp_keras.serving.export import WARMUP_FILE, export_saved_model, next_version
from helpers import hold_folder, random_image, run_cli


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
    local_input = read_image(path, 1)
    if file_format == "JPEG":
        # JPEG decoders differ by a few grey levels (TensorFlow's in the graph, Pillow's locally),
        # which a random network amplifies: check the channel conversion on TensorFlow's decoding.
        from ssp_keras.data.io import convert_channels

        decoded = tf.io.decode_jpeg(open(path, "rb").read()).numpy().astype(np.float32) / 255.0
        assert np.abs(quantised(convert_channels(decoded, 1)) - quantised(local_input)).max() <= 6
        local_input = convert_channels(decoded, 1)
    local = quantised(enhance_array(generator, local_input))
    assert np.abs(quantised(decode_png(output)) - local).max() <= 1


# ------------------------------------------------------------------------------ limits and staging
def test_default_limits_are_recorded_in_the_export(exported):
    from ssp_keras.serving.export import DEFAULT_MAX_BATCH, DEFAULT_MAX_PIXELS, read_limits

    result, loaded = exported
    assert (result.max_pixels, result.max_batch) == (DEFAULT_MAX_PIXELS, DEFAULT_MAX_BATCH) == (8192 * 8192, 64)
    limits = read_limits(result.path)
    assert (limits["max_pixels"], limits["max_batch"]) == (DEFAULT_MAX_PIXELS, DEFAULT_MAX_BATCH)
    with pytest.raises(tf.errors.InvalidArgumentError, match="empty batch"):
        loaded.signatures["serving_default"](images=tf.zeros((0, 8, 8, 1), tf.uint8))


def test_the_warmup_request_fits_small_limits(tmp_path):
    from tensorflow_serving.apis import prediction_log_pb2

    from ssp_keras.serving.export import write_warmup_requests

    write_warmup_requests(str(tmp_path), "m", channels=1, max_pixels=1000)
    record = next(tf.data.TFRecordDataset(str(tmp_path / WARMUP_FILE)).as_numpy_iterator())
    request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
    assert tf.make_ndarray(request.inputs["images"]).shape == (1, 31, 31, 1)  # 31 * 31 <= 1000


@pytest.mark.parametrize("flag, value", [("--max-pixels", "0"), ("--max-batch", "-3")])
def test_cli_export_rejects_bad_limits_before_loading_the_model(tmp_path, monkeypatch, capsys, flag, value):
    argv = ["export", "--model", "no-such-model", "--base", str(tmp_path), flag, value]
    assert run_cli(monkeypatch, argv) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"ssp-net export: error: {flag} must be a positive integer, got {int(value)}"
    assert os.listdir(tmp_path) == []


def test_the_staging_folder_is_named_after_the_process_and_removed_on_failure(generator, tmp_path, monkeypatch):
    from ssp_keras.serving import export as export_module

    seen = []

    def crash(model, path, **limits):
        seen.append(os.path.basename(path))
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_module, "write_signatures", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(generator, str(tmp_path), name="m")
    assert seen[0].startswith(f".tmp-{os.getpid()}-") and "-v1-" in seen[0]
    # Nothing stays: not the staging folder, nor the model folder the failed export created.
    assert not (tmp_path / "m").exists() and os.listdir(tmp_path) == []


def test_stale_staging_folders_of_killed_exports_are_removed(generator, tmp_path, monkeypatch, capsys):
    import shutil

    from ssp_keras.serving.export import read_limits
    from ssp_keras.utils.files import make_staging_dir

    model_dir = tmp_path / "models" / "nerves"
    # A staging folder made by another process that then died (as after kill -9 during an export).
    child = subprocess.run(
        [sys.executable, "-c", "import sys; from ssp_keras.utils.files import make_staging_dir; "
         "print(make_staging_dir(sys.argv[1], 'v1'))", str(model_dir)],
        check=True, capture_output=True, text=True,
    )
    stale = pathlib.Path(child.stdout.strip())
    (stale / "saved_model.pb").write_bytes(b"half written")
    live = pathlib.Path(make_staging_dir(str(model_dir), "v7"))  # this process is alive: kept
    legacy = model_dir / ".tmp-3-abcd1234"  # old naming, owner unknown: kept
    other_host = model_dir / f".tmp-{stale.name.split('-')[1]}-someotherhost-v1-x"  # maybe alive elsewhere: kept
    legacy.mkdir()
    other_host.mkdir()
    assert stale.is_dir() and stale.name.startswith(".tmp-")

    generator.save(tmp_path / "generator.keras")
    argv = ["export", "--model", str(tmp_path / "generator.keras"), "--base", str(tmp_path / "models"),
            "--name", "nerves", "--no-warmup", "--max-pixels", "4096", "--max-batch", "2"]
    try:
        assert run_cli(monkeypatch, argv) == 0
        output = capsys.readouterr().out
        assert f"Removed {stale}" in output and "Limits: at most 2 image(s) per request, 4096 pixels" in output
        assert not stale.exists() and live.is_dir() and legacy.is_dir() and other_host.is_dir()
        assert sorted(os.listdir(model_dir)) == sorted(["1", live.name, legacy.name, other_host.name])
        limits = read_limits(str(model_dir / "1"))
        assert (limits["max_pixels"], limits["max_batch"]) == (4096, 2)
    finally:
        shutil.rmtree(live, ignore_errors=True)


@pytest.mark.parametrize("have", [1, 2, 3, 4])
@pytest.mark.parametrize("want", [1, 3])
def test_the_graphs_channel_conversion_agrees_with_the_reference(have, want):
    """`to_model_channels` (TensorFlow, inside the encoded-image signature) is the twin of
    `data.io.convert_channels` (NumPy, the reference): the same values for gray, gray+alpha, RGB
    and RGBA images (alpha dropped first, as reading a file does)."""
    from ssp_keras.data.io import convert_channels
    from ssp_keras.serving.export import to_model_channels

    image = random_image(7, 9, have, seed=have)
    without_alpha = image[:, :, :3] if have >= 3 else image[:, :, :1]
    expected = convert_channels(without_alpha, want)
    got = to_model_channels(tf.constant(image), want).numpy()
    assert got.shape == expected.shape == (7, 9, want)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_version_is_readable_by_a_server_running_as_another_user(generator, tmp_path, umask_022):
    import stat

    result = export_saved_model(generator, str(tmp_path), name="m", warmup=True)
    assert stat.S_IMODE(os.stat(result.path).st_mode) == 0o755  # what mkdir gives under umask 022
    for folder, _, files in os.walk(result.path):
        assert os.stat(folder).st_mode & stat.S_IROTH and os.stat(folder).st_mode & stat.S_IXOTH, folder
        for name in files:
            assert os.stat(os.path.join(folder, name)).st_mode & stat.S_IROTH, name


def test_two_exports_into_one_model_folder_do_not_run_at_once(generator, tmp_path, monkeypatch, capsys):
    """A model folder is owned by one export at a time (the second is one line, exit 2)."""
    holder = hold_folder(tmp_path / "models" / "nerves", "ssp-net export")
    try:
        generator.save(tmp_path / "generator.keras")
        argv = ["export", "--model", str(tmp_path / "generator.keras"), "--base", str(tmp_path / "models"),
                "--name", "nerves", "--no-warmup"]
        assert run_cli(monkeypatch, argv) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "is in use by another process" in error and f"pid {holder.pid}" in error
        assert os.listdir(tmp_path / "models" / "nerves") == [".ssp-net.lock"]
    finally:
        holder.kill()
        holder.wait()
    # kill -9 released the lock: the next export runs.
    assert run_cli(monkeypatch, argv) == 0
    assert os.listdir(tmp_path / "models" / "nerves") == ["1"]


def test_every_signature_is_exported(exported):
    from ssp_keras.serving.export import SIGNATURES

    _, loaded = exported
    assert set(SIGNATURES) <= set(loaded.signatures)
