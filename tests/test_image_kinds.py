"""Images are not changed without a word: orientation tags are applied, alpha is passed through,
colour reduced to the model's channels is named, samples keep their type and range, and any size
is read."""

import logging
import os

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from ssp_keras.data.io import UnreadableImageError, read_frames_and_alpha, read_image, read_image_shape, write_frames
from ssp_keras.data.samples import SampleFormat
from ssp_keras.inference import enhance_array, enhance_files
from helpers import random_image
from tiny import tiny_generator


@pytest.fixture(scope="module")
def gray_model():
    return tiny_generator(1)


@pytest.fixture(scope="module")
def rgb_model():
    return tiny_generator(3)


def _pixels(height, width, channels, seed=0):
    return np.round(random_image(height, width, channels, seed=seed) * 255).astype(np.uint8)


# ------------------------------------------------------------------------------ orientation
@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_orientation_tag_is_applied_as_viewers_do(tmp_path, orientation):
    pixels = _pixels(20, 33, 3)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(tmp_path / "a.png", exif=exif)
    with Image.open(tmp_path / "a.png") as handle:
        expected = np.asarray(ImageOps.exif_transpose(handle))
    assert np.array_equal(np.round(read_image(str(tmp_path / "a.png")) * 255).astype(np.uint8), expected)
    assert read_image_shape(str(tmp_path / "a.png")) == (*expected.shape[:2], 3)
    tifffile.imwrite(tmp_path / "a.tif", pixels, photometric="rgb", extratags=[(0x0112, "H", 1, orientation, True)])
    assert np.array_equal(np.round(read_image(str(tmp_path / "a.tif")) * 255).astype(np.uint8), expected)
    assert read_image_shape(str(tmp_path / "a.tif")) == (*expected.shape[:2], 3)


def test_a_jpeg_turned_by_exif_comes_out_as_it_is_shown(gray_model, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    (tmp_path / "in").mkdir()
    Image.fromarray(_pixels(40, 64, 1)[:, :, 0]).save(tmp_path / "in" / "photo.jpg", exif=exif, quality=95)
    enhance_files(gray_model, [str(tmp_path / "in")], str(tmp_path / "out"))
    with Image.open(tmp_path / "out" / "photo.jpg") as output:
        assert output.size == (40, 64)  # (width, height): portrait, as shown; no tag left to turn it again
        assert output.getexif().get(0x0112) in (None, 1)


# ------------------------------------------------------------------------------ colour and alpha
def _enhance_one(model, tmp_path, name, caplog):
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        enhance_files(model, [str(tmp_path / "in" / name)], str(tmp_path / "out"), overwrite=True)
    return tmp_path / "out" / name, [record.getMessage() for record in caplog.records]


def test_alpha_is_passed_through_and_colour_reduction_is_named(gray_model, tmp_path, caplog):
    (tmp_path / "in").mkdir()
    rgba = _pixels(30, 41, 4, seed=1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in" / "rgba.png")
    output, messages = _enhance_one(gray_model, tmp_path, "rgba.png", caplog)
    with Image.open(output) as handle:
        assert handle.mode == "LA"
        written = np.asarray(handle)
    assert np.array_equal(written[..., 1], rgba[..., 3])  # alpha untouched
    colour = read_image(str(tmp_path / "in" / "rgba.png"), channels=1)  # the luma the model enhanced
    expected = np.round(enhance_array(gray_model, colour) * 255)[..., 0]
    assert np.abs(written[..., 0].astype(int) - expected).max() <= 1
    assert messages == [f"'{tmp_path / 'in' / 'rgba.png'}' is RGB colour: the 1-channel model enhances its BT.601 "
                        "luma and the output is gray; its alpha channel is passed through unchanged"]


def test_palette_transparency_gif_and_16_bit_gray_alpha_keep_their_alpha(gray_model, tmp_path, caplog):
    (tmp_path / "in").mkdir()
    palette = Image.fromarray(_pixels(24, 30, 1, seed=2)[:, :, 0] // 32, "P")
    palette.putpalette([value for index in range(8) for value in (index * 30, 255 - index * 30, 40)])
    palette.info["transparency"] = 3
    palette.save(tmp_path / "in" / "palette.png", transparency=3)
    palette.save(tmp_path / "in" / "anim.gif", transparency=3)
    transparent = np.asarray(palette) == 3
    for name, written_name in (("palette.png", "palette.png"), ("anim.gif", "anim.png")):
        _, messages = _enhance_one(gray_model, tmp_path, name, caplog)
        with Image.open(tmp_path / "out" / written_name) as handle:
            assert handle.mode == "LA", name
            assert np.array_equal(np.asarray(handle)[..., 1] == 0, transparent), name
        assert len(messages) == 1 and "is palette colour" in messages[0] and "alpha channel" in messages[0]

    gray_alpha = np.stack([np.arange(24 * 30, dtype=np.uint16).reshape(24, 30) * 90,
                           np.full((24, 30), 40000, np.uint16)], axis=-1)
    write_frames(str(tmp_path / "in" / "deep.png"), [gray_alpha[..., :1] / 65535.0],
                 sample_format=SampleFormat.of_bit_depth(16), alphas=[gray_alpha[..., 1:] / 65535.0])
    frames, alphas, info = read_frames_and_alpha(str(tmp_path / "in" / "deep.png"))
    assert info.bit_depth == 16 and info.alpha and np.array_equal(np.round(alphas[0] * 65535), gray_alpha[..., 1:])
    output, messages = _enhance_one(gray_model, tmp_path, "deep.png", caplog)
    assert messages == []  # gray stays gray: nothing to say
    frames, alphas, info = read_frames_and_alpha(str(output))
    assert info.sample_format == SampleFormat("uint16", 0.0, 65535.0)
    assert np.array_equal(np.round(alphas[0] * 65535), gray_alpha[..., 1:])


def test_cmyk_planar_and_rgba_tiffs(gray_model, rgb_model, tmp_path, caplog):
    (tmp_path / "in").mkdir()
    cmyk = np.zeros((16, 20, 4), np.uint8)
    cmyk[..., 0] = 255  # pure cyan ink: RGB (0, 255, 255)
    tifffile.imwrite(tmp_path / "in" / "cmyk.tif", cmyk, photometric="separated")
    assert np.allclose(read_image(str(tmp_path / "in" / "cmyk.tif"))[0, 0], [0.0, 1.0, 1.0])
    output, messages = _enhance_one(rgb_model, tmp_path, "cmyk.tif", caplog)
    assert messages == [f"'{tmp_path / 'in' / 'cmyk.tif'}' is CMYK: converted to RGB for the 3-channel model; the "
                        "output is RGB"]
    assert tifffile.imread(output).shape == (16, 20, 3)

    planar = _pixels(18, 22, 3, seed=4)
    tifffile.imwrite(tmp_path / "in" / "planar.tif", np.moveaxis(planar, -1, 0), photometric="rgb",
                     planarconfig="separate")
    _, messages = _enhance_one(gray_model, tmp_path, "planar.tif", caplog)
    assert len(messages) == 1 and "planar.tif' is RGB colour" in messages[0]

    rgba = np.round(random_image(18, 22, 4, seed=5) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in" / "rgba.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    output, _ = _enhance_one(rgb_model, tmp_path, "rgba.tif", caplog)
    written = tifffile.imread(output)
    assert written.dtype == np.uint16 and written.shape == (18, 22, 4)
    assert np.array_equal(written[..., 3], rgba[..., 3])


def test_gray_stored_as_rgb_loses_nothing_and_gets_no_note(gray_model, tmp_path, caplog):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.repeat(_pixels(32, 32, 1), 3, axis=-1)).save(tmp_path / "in" / "frame.jpg", quality=100)
    _, messages = _enhance_one(gray_model, tmp_path, "frame.jpg", caplog)
    assert not [message for message in messages if "colour" in message]


# ------------------------------------------------------------------------------ sample types
@pytest.mark.parametrize("dtype, low, high", [("float64", -3.0, 7.0), ("int32", -70000, 2**20), ("float32", 0.0, 1.0),
                                              ("int16", -1000, 1000), ("uint16", 0, 65535), ("uint32", 0, 2**24)])
def test_samples_come_back_in_their_own_type_and_range(gray_model, tmp_path, dtype, low, high):
    unit = random_image(40, 36, seed=9)[:, :, 0]
    unit[0, 0], unit[0, 1] = 0.0, 1.0  # the range is the data's own
    samples = (low + unit.astype(np.float64) * (high - low)).astype(dtype)
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "data.tif", samples, photometric="minisblack")
    enhance_files(gray_model, [str(tmp_path / "in")], str(tmp_path / "out"))
    written = tifffile.imread(tmp_path / "out" / "data.tif")
    assert written.dtype == np.dtype(dtype)
    assert low <= written.min() and written.max() <= high
    source = read_image(str(tmp_path / "in" / "data.tif"))
    expected = low + enhance_array(gray_model, source)[:, :, 0].astype(np.float64) * (high - low)
    step = 1.0 if np.issubdtype(np.dtype(dtype), np.integer) else 1e-5 * (high - low)
    assert np.abs(written.astype(np.float64) - expected).max() <= step


# ------------------------------------------------------------------------------ size
def test_a_png_over_pillows_bomb_limit_is_read(tmp_path, monkeypatch):
    from PIL import Image as PillowImage

    Image.fromarray(_pixels(120, 100, 1)[:, :, 0]).save(tmp_path / "big.png")
    # 12000 pixels is more than twice this limit: Pillow itself would call it a decompression bomb.
    monkeypatch.setattr(PillowImage, "MAX_IMAGE_PIXELS", 5000)
    with pytest.raises(PillowImage.DecompressionBombError):
        PillowImage.open(tmp_path / "big.png")
    assert read_image(str(tmp_path / "big.png")).shape == (120, 100, 1)
    assert read_image_shape(str(tmp_path / "big.png")) == (120, 100, 1)
    assert PillowImage.MAX_IMAGE_PIXELS == 5000  # lifted only while our reader opens the file


def test_an_image_larger_than_the_memory_available_is_refused_with_a_reason(tmp_path, monkeypatch):
    from ssp_keras.data import decoding as image_io

    Image.fromarray(_pixels(120, 100, 1)[:, :, 0]).save(tmp_path / "big.png")
    tifffile.imwrite(tmp_path / "big.tif", _pixels(120, 100, 1)[:, :, 0])
    monkeypatch.setattr(image_io, "available_memory_bytes", lambda: 50_000)
    for name in ("big.png", "big.tif"):
        with pytest.raises(UnreadableImageError, match=r"100x120 pixels would need about .* GiB of memory"):
            read_image(str(tmp_path / name))
    assert os.path.getsize(tmp_path / "big.png") > 0
