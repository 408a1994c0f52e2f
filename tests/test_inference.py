"""Inference at any size: padding, tiling, files and folders, model loading, ``ssp-net enhance``."""

import logging
import os

import numpy as np
import pytest

import keras

from ssp_keras.errors import InputError
from ssp_keras.inference import enhance as enhance_module
from ssp_keras.inference import (
    blend_tiles,
    crop_to_size,
    enhance_array,
    enhance_files,
    load_generator,
    pad_to_multiple,
)
from ssp_keras.inference.enhance import output_name, tile_starts
from helpers import random_image, run_cli
from tiny import tiny_generator


@pytest.fixture(scope="module")
def saved_generator(tmp_path_factory, generator):
    """A run folder holding generator.keras, like `ssp-net train --out` leaves."""
    run_dir = tmp_path_factory.mktemp("run")
    generator.save(run_dir / "generator.keras")
    return run_dir


def pointwise_model(channels=1):
    """A model with no spatial context: tiled and whole-image results must be identical."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((None, None, channels))
    outputs = keras.layers.Conv2D(channels, 1, activation="sigmoid")(inputs)
    return keras.Model(inputs, outputs)


# ------------------------------------------------------------------------------ padding
@pytest.mark.parametrize("height, width", [(1, 1), (2, 3), (5, 40), (20, 33), (31, 64), (257, 301)])
def test_pad_to_multiple_is_numpy_reflect_and_crops_back(height, width):
    images = random_image(height, width, 2)[None]
    padded, size = pad_to_multiple(images)
    padded = padded.numpy()
    assert padded.shape[1] % 32 == 0 and padded.shape[2] % 32 == 0
    assert padded.shape[1] - height < 32 and padded.shape[2] - width < 32
    pads = ((0, 0), (0, padded.shape[1] - height), (0, padded.shape[2] - width), (0, 0))
    # numpy's "reflect" mirrors repeatedly when the pad exceeds the size; 1-pixel sides repeat.
    expected = np.pad(images, pads, mode="reflect" if min(height, width) > 1 else "edge")
    if min(height, width) > 1:
        np.testing.assert_array_equal(padded, expected)
    else:
        np.testing.assert_array_equal(padded[:, :height, :width], images)
    np.testing.assert_array_equal(crop_to_size(padded, size), images)


def test_pad_to_multiple_leaves_aligned_images_alone():
    images = random_image(64, 96)[None]
    padded, _ = pad_to_multiple(images)
    np.testing.assert_array_equal(padded.numpy(), images)


# ------------------------------------------------------------------------------ arrays
@pytest.mark.parametrize("shape", [(257, 301, 1), (33, 7, 1), (100, 100)])
def test_enhance_array_any_size_keeps_shape_and_range(generator, shape):
    image = np.random.default_rng(3).random(shape, dtype=np.float32)
    result = enhance_array(generator, image)
    assert result.shape == image.shape and result.dtype == np.float32
    assert np.all(np.isfinite(result)) and result.min() >= 0.0 and result.max() <= 1.0


def test_enhance_array_equals_the_model_on_aligned_batches(generator):
    batch = np.stack([random_image(64, 96, seed=seed) for seed in range(2)])
    expected = generator(batch, training=False).numpy()
    np.testing.assert_allclose(enhance_array(generator, batch), expected, atol=1e-5)


def test_enhance_array_rejects_wrong_channels(generator):
    with pytest.raises(InputError, match="1-channel model"):
        enhance_array(generator, random_image(64, 64, 3))


def test_different_sizes_do_not_retrace_endlessly(generator):
    for height, width in [(40, 50), (70, 90), (100, 33), (129, 65), (64, 200), (31, 31)]:
        enhance_array(generator, random_image(height, width))
    from ssp_keras.inference.compiled import compiled_enhance

    assert compiled_enhance(generator).compiled.experimental_get_tracing_count() <= 3


def test_rgb_generator():
    rgb = tiny_generator(3)
    result = enhance_array(rgb, random_image(45, 77, 3))
    assert result.shape == (45, 77, 3)


# ------------------------------------------------------------------------------ tiling
@pytest.mark.parametrize("length, tile, overlap", [(100, 64, 16), (64, 64, 16), (30, 64, 16), (1000, 256, 64)])
def test_tile_starts_cover_with_equal_tiles(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    extent = min(tile, length)
    assert starts[0] == 0 and starts[-1] + extent == length
    for previous, current in zip(starts, starts[1:]):
        assert current - previous <= extent - overlap  # neighbours share at least `overlap`


@pytest.mark.parametrize("height, width, tile, overlap", [(150, 230, 64, 16), (97, 40, 32, 8), (300, 300, 128, 64)])
def test_blend_tiles_is_seamless_for_a_pointwise_function(height, width, tile, overlap):
    image = random_image(height, width, 3)
    calls = []

    def square(part):
        calls.append(part.shape)
        return part**2

    result = blend_tiles(image, square, tile, overlap)
    np.testing.assert_allclose(result, image**2, atol=1e-6)
    assert len(set(calls)) == 1  # one tile shape: one trace


def test_tiled_enhancement_equals_whole_image_for_a_pointwise_model():
    model = pointwise_model()
    image = random_image(200, 170)
    whole = enhance_array(model, image, tile_size=0)
    tiled = enhance_array(model, image, tile_size=64, overlap=16)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)


def test_large_images_are_tiled_automatically(generator, monkeypatch):
    calls = []
    original = enhance_module.blend_tiles
    monkeypatch.setattr(enhance_module, "AUTO_TILE_PIXELS", 96 * 96)
    monkeypatch.setattr(enhance_module, "DEFAULT_TILE_SIZE", 64)

    def spy(image, enhance_tile, tile_size, overlap):
        calls.append(tile_size)
        return original(image, enhance_tile, tile_size, overlap)

    monkeypatch.setattr(enhance_module, "blend_tiles", spy)
    result = enhance_array(generator, random_image(130, 150), overlap=16)
    assert calls == [64] and result.shape == (130, 150, 1)
    assert 0.0 <= result.min() and result.max() <= 1.0
    enhance_array(generator, random_image(90, 90))
    assert calls == [64]  # small images stay whole


# ------------------------------------------------------------------------------ files
def write_test_images(folder):
    """An 8-bit PNG, a 16-bit TIFF in a sub-folder, and a corrupt PNG."""
    from ssp_keras.data.io import write_image

    (folder / "sub").mkdir(parents=True)
    write_image(str(folder / "a.png"), random_image(45, 70, seed=1), bit_depth=8)
    write_image(str(folder / "sub" / "b.tif"), random_image(40, 33, seed=2), bit_depth=16)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")


def test_enhance_files_keeps_names_folders_and_bit_depth(generator, tmp_path, caplog):
    import tifffile
    from PIL import Image

    from ssp_keras.data.io import read_image

    inputs, out = tmp_path / "in", tmp_path / "out"
    write_test_images(inputs)
    lines = []
    with caplog.at_level(logging.WARNING):
        result = enhance_files(generator, [str(inputs)], str(out), progress=lines.append)

    assert sorted(os.path.relpath(path, out) for path in result.written) == ["a.png", os.path.join("sub", "b.tif")]
    assert [path for path, _ in result.skipped] == [str(inputs / "broken.png")]
    assert "broken.png" in caplog.text and len(lines) == 2
    with Image.open(out / "a.png") as handle:
        assert handle.mode == "L" and handle.size == (70, 45)
    tiff = tifffile.imread(out / "sub" / "b.tif")
    assert tiff.dtype == np.uint16 and tiff.shape == (40, 33)
    # The file holds what enhance_array computes, quantised.
    expected = enhance_array(generator, read_image(str(inputs / "sub" / "b.tif"), 1))[:, :, 0]
    assert np.abs(tiff.astype(np.float64) - np.round(expected * 65535)).max() <= 1


def test_enhance_files_accepts_single_files(generator, tmp_path):
    from ssp_keras.data.io import write_image

    source = tmp_path / "in" / "scan.tiff"
    source.parent.mkdir()
    write_image(str(source), random_image(50, 60), bit_depth=8)
    result = enhance_files(generator, [str(source)], str(tmp_path / "out"))
    assert result.written == [str(tmp_path / "out" / "scan.tiff")]


@pytest.mark.parametrize("where", ["input folder", "inside input folder", "next to input file"])
def test_enhance_files_never_writes_into_inputs(generator, tmp_path, where):
    inputs = tmp_path / "in"
    write_test_images(inputs)
    if where == "input folder":
        sources, out = [str(inputs)], inputs
    elif where == "inside input folder":
        sources, out = [str(inputs)], inputs / "enhanced"
    else:
        sources, out = [str(inputs / "a.png")], inputs
    before = sorted(str(path) for path in inputs.rglob("*"))
    with pytest.raises(InputError, match="refusing"):
        enhance_files(generator, sources, str(out))
    assert sorted(str(path) for path in inputs.rglob("*")) == before


def test_enhance_files_refuses_colliding_names(generator, tmp_path):
    from ssp_keras.data.io import write_image

    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        write_image(str(tmp_path / folder / "same.png"), random_image(32, 32), bit_depth=8)
    with pytest.raises(InputError, match="both be written"):
        enhance_files(generator, [str(tmp_path / "x"), str(tmp_path / "y")], str(tmp_path / "out"))


def test_enhance_files_with_nothing_readable(generator, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.jpg").write_bytes(b"garbage")
    with pytest.raises(InputError, match="no readable image"):
        enhance_files(generator, [str(tmp_path / "in")], str(tmp_path / "out"))


def test_output_names():
    assert output_name("a/b.tif") == "a/b.tif"
    assert output_name("scan.dcm") == "scan.dcm"  # DICOM in, DICOM out
    assert output_name("scan.dcm", dicom_as="png") == "scan.png"
    assert output_name("anim.GIF") == "anim.png"


# ------------------------------------------------------------------------------ loading
def test_load_generator_from_run_dir_and_file(saved_generator, generator):
    image = random_image(40, 40)
    expected = enhance_array(generator, image)
    for source in (str(saved_generator), str(saved_generator / "generator.keras")):
        loaded = load_generator(source)
        assert loaded.channels == 1
        np.testing.assert_allclose(enhance_array(loaded, image), expected, atol=1e-6)


def test_load_generator_errors_name_the_culprit(tmp_path):
    with pytest.raises(InputError, match="no generator.keras in the folder"):
        load_generator(str(tmp_path))
    with pytest.raises(InputError, match="model not found: 'nowhere'"):
        load_generator("nowhere")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="broken.keras"):
        load_generator(str(broken))
    inputs = keras.Input((64, 64, 1))
    keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs)).save(tmp_path / "fixed.keras")
    with pytest.raises(InputError, match="fixed-size"):
        load_generator(str(tmp_path / "fixed.keras"))
    text = tmp_path / "weights.txt"
    text.write_text("x")
    with pytest.raises(InputError, match="not a .keras model file"):
        load_generator(str(text))


def test_load_generator_by_pretrained_name():
    """The bundled ccmid-lite loads with every weight the file holds (it was saved before the
    library's fused layers existed; Keras files weights by class name, see networks/layers.py)."""
    import io
    import warnings
    import zipfile

    import h5py

    from ssp_keras.pretrained import pretrained_path

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras only *warns* about weights it could not place
        model = load_generator("ccmid-lite")
    with zipfile.ZipFile(pretrained_path("ccmid-lite")) as archive:
        weights_file = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        saved = []
        weights_file.visititems(lambda _, item: saved.append(item[()]) if isinstance(item, h5py.Dataset) else None)
    loaded = [variable.numpy() for variable in model.weights]
    assert len(saved) == len(loaded) > 50
    key = lambda array: (array.shape, float(np.abs(array).sum()))  # noqa: E731
    for saved_array, loaded_array in zip(sorted(saved, key=key), sorted(loaded, key=key)):
        np.testing.assert_allclose(loaded_array, saved_array, rtol=1e-6)
    assert enhance_array(model, random_image(40, 40, model.inputs[0].shape[-1])).shape[:2] == (40, 40)


def test_the_demo_fine_tunes_the_bundled_model_as_it_was_trained():
    """The demo's configuration for fine-tuning ccmid-lite builds its architecture (no growing),
    with its degradation and its terms, the bundled model as the restoration teacher."""
    from ssp_keras.cli.demo import _compatible_pretrained, fine_tuning_config
    from ssp_keras.config import preset
    from ssp_keras.networks import build_generator
    from ssp_keras.pretrained import pretrained_config

    lite, trained = preset("lite"), pretrained_config("ccmid-lite")
    assert _compatible_pretrained(lite) and not _compatible_pretrained(lite.replace(**{"generator.stem_width": 8}))
    config = fine_tuning_config(lite, "ccmid-lite")
    assert config.generator == trained.generator and config.degradation == trained.degradation
    assert config.loss.restoration_teacher == "ccmid-lite"
    assert config.loss.synthetic_restoration == trained.loss.synthetic_restoration > 0
    assert config.loss.texture_keeping == trained.loss.texture_keeping > 0
    generator, bundled = build_generator(config), load_generator("ccmid-lite")
    assert [tuple(w.shape) for w in generator.weights] == [tuple(w.shape) for w in bundled.weights]


def test_the_bundled_model_ships_the_settings_it_was_trained_with(tmp_path, monkeypatch):
    """ccmid-lite's config.json (what the demo fine-tunes it with) matches its generator file, holds
    the restoration degradation it was trained on (#21), and a copy without it is reported as None."""
    import shutil

    from ssp_keras.pretrained import pretrained_config, pretrained_path

    config = pretrained_config("ccmid-lite")
    model = load_generator("ccmid-lite")
    assert list(model.decoder_widths) == list(config.generator.decoder_widths)
    assert model.full_resolution_skip == config.generator.full_resolution_skip  # the demo builds G from it
    assert config.degradation.blur_probability > 0 and config.degradation.noise_probability > 0
    (tmp_path / "ccmid-lite").mkdir()
    shutil.copy(pretrained_path("ccmid-lite"), tmp_path / "ccmid-lite" / "generator.keras")
    monkeypatch.setenv("SSP_KERAS_MODELS", str(tmp_path))
    assert pretrained_config("ccmid-lite") is None


def test_load_generator_accepts_any_image_model(tmp_path):
    pointwise_model(3).save(tmp_path / "plain.keras")
    model = load_generator(str(tmp_path / "plain.keras"))
    assert enhance_array(model, random_image(10, 20, 3)).shape == (10, 20, 3)


# ------------------------------------------------------------------------------ CLI
def test_cli_enhance(saved_generator, tmp_path, monkeypatch, capsys):
    inputs = tmp_path / "in"
    write_test_images(inputs)
    argv = ["enhance", "--model", str(saved_generator), str(inputs), "--out", str(tmp_path / "out")]
    code = run_cli(monkeypatch, argv)
    output = capsys.readouterr().out
    # broken.png was skipped: partial success has its own exit status (3), the rest is written
    assert code == 3 and (tmp_path / "out" / "sub" / "b.tif").is_file()
    assert "Enhanced 2 image(s)" in output and "skipped 1" in output
    os.remove(inputs / "broken.png")
    argv = ["enhance", "--model", str(saved_generator), str(inputs), "--out", str(tmp_path / "all")]
    assert run_cli(monkeypatch, argv) == 0 and "skipped" not in capsys.readouterr().out


def test_cli_enhance_refuses_the_input_folder(saved_generator, tmp_path, monkeypatch, capsys):
    inputs = tmp_path / "in"
    write_test_images(inputs)
    code = run_cli(monkeypatch, ["enhance", "--model", str(saved_generator), str(inputs), "--out", str(inputs)])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.startswith("ssp-net enhance: error: refusing") and "\n" not in error


# ------------------------------------------------------------------------------ stacks, DICOM, safety
def test_enhance_files_enhances_every_page_of_a_tiff_stack(generator, tmp_path):
    import tifffile

    pages = np.stack([np.round(random_image(40, 33, seed=seed)[:, :, 0] * 65535).astype(np.uint16) for seed in (3, 4, 5)])
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "stack.tif", pages, photometric="minisblack")
    result = enhance_files(generator, [str(tmp_path / "in")], str(tmp_path / "out"))
    assert result.written == [str(tmp_path / "out" / "stack.tif")] and result.frames == 3
    with tifffile.TiffFile(tmp_path / "out" / "stack.tif") as tiff:
        assert len(tiff.pages) == 3 and all(page.dtype == np.uint16 for page in tiff.pages)
        written = tiff.asarray()
    for page, output in zip(pages, written):  # each page is what enhance_array makes of it
        expected = enhance_array(generator, page[:, :, None].astype(np.float32) / 65535)[:, :, 0]
        assert np.abs(output.astype(np.float64) - np.round(expected * 65535)).max() <= 1


def test_enhance_files_dicom_in_dicom_out_keeps_frames_and_bit_depth(generator, tmp_path):
    import pydicom

    from conftest import write_test_dicom
    from ssp_keras.data.io import read_frames

    volume = np.stack([np.round(random_image(36, 40, seed=seed)[:, :, 0] * 4095).astype(np.uint16) for seed in (6, 7)])
    (tmp_path / "in").mkdir()
    write_test_dicom(tmp_path / "in" / "scan.dcm", volume, bits_stored=12, PatientID="P-7",
                     PatientName="Doe^Jane", StudyInstanceUID="1.2.3.4", SeriesInstanceUID="1.2.3.4.5")
    result = enhance_files(generator, [str(tmp_path / "in")], str(tmp_path / "out"), model_name="tiny")
    assert result.written == [str(tmp_path / "out" / "scan.dcm")]
    output = pydicom.dcmread(tmp_path / "out" / "scan.dcm")
    assert (int(output.NumberOfFrames), output.BitsAllocated, output.BitsStored) == (2, 16, 12)
    assert (output.PatientID, output.StudyInstanceUID) == ("P-7", "1.2.3.4")
    assert output.SeriesInstanceUID != "1.2.3.4.5" and output.SeriesDescription == "SSP-Net enhanced (tiny)"
    assert list(output.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    frames, _ = read_frames(str(tmp_path / "out" / "scan.dcm"))
    for source, written in zip(volume, frames):
        expected = enhance_array(generator, source[:, :, None].astype(np.float32) / 4095)
        assert np.abs(written - expected).max() <= 0.5 / 4095 + 1e-5


def test_enhance_files_dicom_as_png_writes_one_png_per_frame(generator, tmp_path):
    from PIL import Image

    from conftest import write_test_dicom

    (tmp_path / "in").mkdir()
    write_test_dicom(tmp_path / "in" / "cine.dcm", np.full((3, 20, 24), 3000, np.uint16), bits_stored=12)
    write_test_dicom(tmp_path / "in" / "one.dcm", np.full((20, 24), 3000, np.uint16), bits_stored=12)
    result = enhance_files(generator, [str(tmp_path / "in")], str(tmp_path / "out"), dicom_as="png")
    names = ["cine_frame001.png", "cine_frame002.png", "cine_frame003.png", "one.png"]
    assert result.written == [str(tmp_path / "out" / name) for name in names]
    assert sorted(os.listdir(tmp_path / "out")) == names
    with Image.open(tmp_path / "out" / "cine_frame002.png") as handle:
        assert handle.mode.startswith("I;16") and handle.size == (24, 20)


def test_existing_outputs_are_refused_unless_overwrite(generator, saved_generator, tmp_path, monkeypatch, capsys):
    inputs, out = tmp_path / "in", tmp_path / "out"
    write_test_images(inputs)
    (out / "sub").mkdir(parents=True)
    (out / "a.png").write_bytes(b"old a")
    (out / "sub" / "b.tif").write_bytes(b"old b")
    with pytest.raises(InputError, match=r"refusing to overwrite 2 existing file\(s\) in .*--overwrite"):
        enhance_files(generator, [str(inputs)], str(out))
    assert (out / "a.png").read_bytes() == b"old a" and sorted(os.listdir(out)) == ["a.png", "sub"]
    # The command checks before anything else, even before it looks for the model.
    code = run_cli(monkeypatch, ["enhance", "--model", "no-such-model", str(inputs), "--out", str(out)])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "refusing to overwrite 2 existing file(s)" in error and "\n" not in error
    result = enhance_files(generator, [str(inputs)], str(out), overwrite=True)
    assert len(result.written) == 2 and (out / "a.png").read_bytes().startswith(b"\x89PNG")


def test_out_may_lie_in_the_folder_of_an_input_file(saved_generator, tmp_path, monkeypatch, capsys):
    from ssp_keras.data.io import write_image

    (tmp_path / "in").mkdir()
    write_image(str(tmp_path / "in" / "one.png"), random_image(30, 30), bit_depth=8)
    monkeypatch.chdir(tmp_path / "in")  # cd in && ssp-net enhance one.png --out results
    assert run_cli(monkeypatch, ["enhance", "--model", str(saved_generator), "one.png", "--out", "results"]) == 0
    assert (tmp_path / "in" / "results" / "one.png").is_file()
    before = (tmp_path / "in" / "one.png").read_bytes()
    for out in (".", str(tmp_path / "in")):  # the output would be the input itself: refused, even with --overwrite
        code = run_cli(monkeypatch, ["enhance", "--model", str(saved_generator), "one.png", "--out", out, "--overwrite"])
        assert code == 2 and "refusing to overwrite the input file 'one.png'" in capsys.readouterr().err
    assert (tmp_path / "in" / "one.png").read_bytes() == before


def test_a_hard_link_to_an_input_is_never_overwritten(generator, tmp_path):
    from ssp_keras.data.io import write_image

    source, out = tmp_path / "in" / "a.png", tmp_path / "out"
    source.parent.mkdir()
    out.mkdir()
    write_image(str(source), random_image(30, 30), bit_depth=8)
    os.link(source, out / "a.png")
    before = source.read_bytes()
    with pytest.raises(InputError, match="refusing to overwrite the input file"):
        enhance_files(generator, [str(source)], str(out), overwrite=True)
    assert source.read_bytes() == before


def test_cli_enhance_dicom_as_png(saved_generator, tmp_path, monkeypatch, capsys):
    from conftest import write_test_dicom

    (tmp_path / "in").mkdir()
    write_test_dicom(tmp_path / "in" / "scan.dcm", np.full((20, 24), 3000, np.uint16), bits_stored=12)
    base = ["enhance", "--model", str(saved_generator), str(tmp_path / "in")]
    assert run_cli(monkeypatch, base + ["--out", str(tmp_path / "dicom")]) == 0
    assert run_cli(monkeypatch, base + ["--out", str(tmp_path / "png"), "--dicom-as", "png"]) == 0
    assert os.listdir(tmp_path / "dicom") == ["scan.dcm"] and os.listdir(tmp_path / "png") == ["scan.png"]


@pytest.mark.parametrize("native", [True, False])
def test_enhance_precision_auto_follows_the_cpu_and_explicit_bfloat16_warns_where_emulated(
        saved_generator, tmp_path, monkeypatch, capsys, native):
    from ssp_keras import runtime
    from ssp_keras.data.io import read_image, write_image

    monkeypatch.setattr(runtime, "native_bfloat16", lambda flags=None: native)
    write_image(str(tmp_path / "one.png"), random_image(40, 36), bit_depth=8)
    outputs = {}
    for precision in ("auto", "bfloat16", "float32"):
        out = tmp_path / precision
        assert run_cli(monkeypatch, ["enhance", "--model", str(saved_generator), str(tmp_path / "one.png"),
                                     "--out", str(out), "--precision", precision]) == 0
        captured = capsys.readouterr()
        assert ("Computing in bfloat16" in captured.out) is (precision == "auto" and native)
        assert ("emulates it" in captured.err) is (precision == "bfloat16" and not native)
        outputs[precision] = read_image(str(out / "one.png"), 1)
    np.testing.assert_array_equal(outputs["auto"], outputs["bfloat16" if native else "float32"])
    assert np.abs(outputs["bfloat16"] - outputs["float32"]).max() * 255 <= 8  # 8-bit files, bf16 vs f32
