"""Reading, writing, listing and scanning images (ssp_keras.data.io)."""

import logging
import os
import pathlib

import numpy as np
import pytest
from PIL import Image

from conftest import write_test_dicom as write_dicom
from ssp_keras.data import io as image_io
from ssp_keras.errors import InputError


def gradient(height=24, width=32, channels=1):
    """A float32 [H, W, C] ramp from 0 to 1 (every channel a different direction)."""
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    cols = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    planes = [(rows + cols) / 2, rows * np.ones_like(cols), 1 - cols * np.ones_like(rows)]
    return np.stack(planes[:channels], axis=-1)


# ------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize(
    "name, bit_depth, channels, tolerance",
    [
        ("gray8.png", 8, 1, 0.5 / 255),
        ("gray16.png", 16, 1, 0.5 / 65535),
        ("rgb8.png", 8, 3, 0.5 / 255),
        ("rgb16.png", 16, 3, 0.5 / 65535),
        ("gray.bmp", 8, 1, 0.5 / 255),
        ("rgb.bmp", 8, 3, 0.5 / 255),
        ("gray8.tif", 8, 1, 0.5 / 255),
        ("gray16.tiff", 16, 1, 0.5 / 65535),
        ("rgb16.tif", 16, 3, 0.5 / 65535),
        ("float.tif", 32, 1, 1e-7),
        ("gray.jpg", 8, 1, 0.03),
        ("rgb.jpeg", 8, 3, 0.05),
    ],
)
def test_write_then_read_round_trips(tmp_path, name, bit_depth, channels, tolerance):
    image = gradient(channels=channels)
    path = str(tmp_path / name)
    image_io.write_image(path, image, bit_depth=bit_depth)
    back, info = image_io.read_image_with_info(path)
    assert back.dtype == np.float32 and back.shape == image.shape
    assert back.min() >= 0.0 and back.max() <= 1.0
    assert np.abs(back - image).max() <= tolerance + 1e-6  # half a quantisation step
    assert info.bit_depth == (8 if bit_depth == 8 else 16)
    assert not [entry for entry in os.listdir(tmp_path) if entry.startswith(".tmp")]


def test_16_bit_keeps_full_range_and_precision(tmp_path):
    values = np.array([[0, 1, 255, 256, 4096, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "a.png")
    import tifffile

    tifffile.imwrite(tmp_path / "a.tif", values)
    for name in ("a.png", "a.tif"):
        image, info = image_io.read_image_with_info(str(tmp_path / name))
        np.testing.assert_allclose(image[0, :, 0], values[0] / 65535.0, atol=1e-7)
        assert image[0, -1, 0] == 1.0 and image[0, 3, 0] > image[0, 2, 0]  # not clipped at 255
        assert (info.bit_depth, info.dtype) == (16, "uint16")


def test_gif_first_frame(tmp_path):
    first = (gradient(channels=3) * 255).astype(np.uint8)
    frames = [Image.fromarray(first), Image.fromarray(255 - first)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    image = image_io.read_image(str(tmp_path / "anim.gif"), channels=1)
    assert image.shape == (24, 32, 1)
    # GIF palettes quantise: compare loosely with the first (not the inverted second) frame
    assert np.abs(image - image_io.convert_channels(first / 255.0, 1)).mean() < 0.05


def test_tiff_first_page_of_multipage(tmp_path):
    import tifffile

    pages = np.stack([np.full((8, 8), 10, np.uint8), np.full((8, 8), 200, np.uint8)])
    tifffile.imwrite(tmp_path / "pages.tif", pages)
    image = image_io.read_image(str(tmp_path / "pages.tif"))
    assert image.shape == (8, 8, 1)
    np.testing.assert_allclose(image, 10 / 255.0)


def test_float_tiff_outside_unit_range_is_scaled_and_nan_rejected(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "wide.tif", np.array([[-5.0, 0.0, 15.0]], np.float32))
    np.testing.assert_allclose(image_io.read_image(str(tmp_path / "wide.tif"))[0, :, 0], [0.0, 0.25, 1.0])
    tifffile.imwrite(tmp_path / "nan.tif", np.array([[0.5, np.nan]], np.float32))
    with pytest.raises(InputError, match="nan.tif.*NaN"):
        image_io.read_image(str(tmp_path / "nan.tif"))


# ------------------------------------------------------------------------------ DICOM
def test_dicom_16_bit_full_scale(tmp_path):
    pixels = np.array([[0, 255, 256, 32768, 65535]], dtype=np.uint16)
    write_dicom(tmp_path / "a.dcm", pixels, bits_stored=16)
    image, info = image_io.read_image_with_info(str(tmp_path / "a.dcm"))
    np.testing.assert_allclose(image[0, :, 0], pixels[0] / 65535.0, atol=1e-6)
    assert image[0, -1, 0] == pytest.approx(1.0)
    assert (info.bit_depth, info.format) == (16, "dicom")


def test_dicom_12_bit_scaled_by_stored_bits(tmp_path):
    pixels = np.array([[0, 1024, 2048, 4095]], dtype=np.uint16)  # 4096 levels
    write_dicom(tmp_path / "a.dcm", pixels, bits_stored=12)
    image = image_io.read_image(str(tmp_path / "a.dcm"))
    np.testing.assert_allclose(image[0, :, 0], pixels[0] / 4095.0, atol=1e-6)


def test_dicom_rescale_and_monochrome1(tmp_path):
    pixels = np.array([[0, 1000, 4095]], dtype=np.uint16)
    # a linear rescale (e.g. to Hounsfield units) keeps each value's place in the range
    write_dicom(tmp_path / "ct.dcm", pixels, bits_stored=12, slope=2, intercept=-1024)
    np.testing.assert_allclose(
        image_io.read_image(str(tmp_path / "ct.dcm"))[0, :, 0], pixels[0] / 4095.0, atol=1e-6
    )
    write_dicom(tmp_path / "inverted.dcm", pixels, bits_stored=12, photometric="MONOCHROME1")
    np.testing.assert_allclose(
        image_io.read_image(str(tmp_path / "inverted.dcm"))[0, :, 0], 1.0 - pixels[0] / 4095.0, atol=1e-6
    )


def test_dicom_multiframe_reads_first_frame(tmp_path):
    frames = np.stack([np.full((3, 4), 100, np.uint16), np.full((3, 4), 4000, np.uint16)])
    write_dicom(tmp_path / "cine.dcm", frames, bits_stored=12)
    image = image_io.read_image(str(tmp_path / "cine.dcm"))
    assert image.shape == (3, 4, 1)
    np.testing.assert_allclose(image, 100 / 4095.0, atol=1e-6)


# ------------------------------------------------------------------------------ stacks
def test_read_frames_returns_every_tiff_page_and_read_image_warns_once(tmp_path, caplog):
    import tifffile

    pages = np.stack([np.full((6, 9), 1000 * (index + 1), np.uint16) for index in range(3)])
    tifffile.imwrite(tmp_path / "stack.tif", pages, photometric="minisblack")
    frames, info = image_io.read_frames(str(tmp_path / "stack.tif"))
    assert [frame.shape for frame in frames] == [(6, 9, 1)] * 3
    np.testing.assert_allclose([frame[0, 0, 0] for frame in frames], np.array([1000, 2000, 3000]) / 65535.0)
    assert (info.frames, info.bit_depth, info.dtype, info.format) == (3, 16, "uint16", "tiff")
    with caplog.at_level(logging.WARNING):
        first = image_io.read_image(str(tmp_path / "stack.tif"))
        image_io.read_image(str(tmp_path / "stack.tif"))  # the same file again: no second warning
    np.testing.assert_allclose(first, frames[0])
    warnings = [record.getMessage() for record in caplog.records if "stack.tif" in record.getMessage()]
    assert len(warnings) == 1 and "3 pages" in warnings[0] and "only the first" in warnings[0]


def test_single_images_do_not_warn(tmp_path, caplog):
    image_io.write_image(str(tmp_path / "one.tif"), gradient(), bit_depth=16)
    with caplog.at_level(logging.WARNING):
        frames, info = image_io.read_frames(str(tmp_path / "one.tif"))
        image_io.read_image(str(tmp_path / "one.tif"))
    assert len(frames) == 1 and info.frames == 1 and not caplog.records


def test_float_tiff_stack_is_scaled_by_the_whole_stack(tmp_path):
    import tifffile

    pages = np.stack([np.full((4, 4), value, np.float32) for value in (-2.0, 0.0, 6.0)])
    tifffile.imwrite(tmp_path / "float.tif", pages, photometric="minisblack")
    frames, _ = image_io.read_frames(str(tmp_path / "float.tif"))
    # one scale for the stack: -2 -> 0, 0 -> 0.25, 6 -> 1 (frame by frame each would be 0)
    np.testing.assert_allclose([frame[0, 0, 0] for frame in frames], [0.0, 0.25, 1.0])


def test_read_frames_returns_every_dicom_frame(tmp_path, caplog):
    volume = np.stack([np.full((3, 4), value, np.uint16) for value in (100, 2000, 4000)])
    write_dicom(tmp_path / "cine.dcm", volume, bits_stored=12)
    frames, info = image_io.read_frames(str(tmp_path / "cine.dcm"))
    np.testing.assert_allclose([frame[0, 0, 0] for frame in frames], np.array([100, 2000, 4000]) / 4095.0, atol=1e-6)
    assert (info.frames, info.format) == (3, "dicom")
    with caplog.at_level(logging.WARNING):
        image_io.read_image(str(tmp_path / "cine.dcm"))
    assert "cine.dcm" in caplog.text and "3 frames" in caplog.text
    assert image_io.dicom_frame_count(str(tmp_path / "cine.dcm")) == 3


@pytest.mark.parametrize("bit_depth, channels, dtype", [(8, 1, np.uint8), (16, 1, np.uint16), (16, 3, np.uint16)])
def test_write_frames_writes_a_multi_page_tiff(tmp_path, bit_depth, channels, dtype):
    import tifffile

    frames = [gradient(10, 12, channels) * scale for scale in (0.2, 0.6, 1.0, 0.4)]
    image_io.write_frames(str(tmp_path / "out.tif"), frames, bit_depth=bit_depth)
    with tifffile.TiffFile(tmp_path / "out.tif") as tiff:
        assert len(tiff.pages) == 4
        assert all(page.dtype == dtype for page in tiff.pages)
    back, info = image_io.read_frames(str(tmp_path / "out.tif"))
    assert len(back) == 4 and info.dtype == np.dtype(dtype).name
    for original, read in zip(frames, back):
        np.testing.assert_allclose(read, original, atol=0.5 / (2**bit_depth - 1) + 1e-7)


def test_write_frames_keeps_pages_of_different_sizes(tmp_path):
    image_io.write_frames(str(tmp_path / "mixed.tif"), [gradient(5, 6), gradient(7, 3)], bit_depth=8)
    frames, info = image_io.read_frames(str(tmp_path / "mixed.tif"))
    assert [frame.shape for frame in frames] == [(5, 6, 1), (7, 3, 1)] and info.frames == 2


def test_write_frames_refuses_several_frames_for_single_frame_formats(tmp_path):
    with pytest.raises(ValueError, match="only TIFF holds several"):
        image_io.write_frames(str(tmp_path / "a.png"), [gradient(), gradient()], bit_depth=8)
    assert not os.listdir(tmp_path)


# ------------------------------------------------------------------------------ DICOM out
def dicom_source(path, pixels, **options):
    """A DICOM with patient, study and series, as a scanner would write it."""
    from pydicom.uid import generate_uid

    attributes = dict(
        PatientName="Doe^Jane", PatientID="P-123", PatientBirthDate="19700101", StudyInstanceUID=generate_uid(),
        StudyDate="20240102", AccessionNumber="A42", SeriesInstanceUID=generate_uid(), Modality="OT",
        ImageType=["ORIGINAL", "PRIMARY", "CONFOCAL"], SeriesDescription="cornea scan",
    )
    attributes.update(options.pop("attributes", {}))
    write_dicom(path, pixels, **options, **attributes)


def test_derived_dicom_keeps_patient_and_study_with_new_uids(tmp_path):
    import pydicom

    volume = np.stack([np.full((5, 6), value, np.uint16) for value in (0, 1000, 4095)])
    dicom_source(tmp_path / "in.dcm", volume, bits_stored=12)
    frames, _ = image_io.read_frames(str(tmp_path / "in.dcm"))
    enhanced = [1.0 - frame for frame in frames]
    image_io.write_derived_dicom(str(tmp_path / "out.dcm"), enhanced, str(tmp_path / "in.dcm"),
                                 "SSP-Net enhanced (ccmid-lite)", "Enhanced with SSP-Net, model ccmid-lite")
    source, result = pydicom.dcmread(tmp_path / "in.dcm"), pydicom.dcmread(tmp_path / "out.dcm")
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "StudyDate",
                    "AccessionNumber", "SOPClassUID", "Modality"):
        assert result[keyword].value == source[keyword].value, keyword
    assert result.SOPInstanceUID != source.SOPInstanceUID and result.SeriesInstanceUID != source.SeriesInstanceUID
    assert result.file_meta.MediaStorageSOPInstanceUID == result.SOPInstanceUID
    assert result.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert list(result.ImageType) == ["DERIVED", "SECONDARY", "CONFOCAL"]
    assert result.SeriesDescription == "SSP-Net enhanced (ccmid-lite)"
    assert "ccmid-lite" in result.DerivationDescription
    assert result.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert (result.BitsAllocated, result.BitsStored, result.HighBit, result.PixelRepresentation) == (16, 12, 11, 0)
    assert int(result.NumberOfFrames) == 3
    np.testing.assert_array_equal(result.pixel_array[:, 0, 0], [4095, 3095, 0])
    back, info = image_io.read_frames(str(tmp_path / "out.dcm"))
    assert info.frames == 3
    for expected, read in zip(enhanced, back):
        np.testing.assert_allclose(read, expected, atol=0.5 / 4095 + 1e-6)


def test_derived_dicom_keeps_signed_rescaled_monochrome1_values(tmp_path):
    import pydicom

    pixels = np.arange(-2000, 2000, 100, dtype=np.int16).reshape(5, 8)
    dicom_source(tmp_path / "ct.dcm", pixels, bits_stored=12, signed=True, slope=2, intercept=-1024,
                 photometric="MONOCHROME1")
    (frame,), _ = image_io.read_frames(str(tmp_path / "ct.dcm"))
    image_io.write_derived_dicom(str(tmp_path / "out.dcm"), [frame], str(tmp_path / "ct.dcm"), "x", "y")
    result = pydicom.dcmread(tmp_path / "out.dcm")
    assert (result.PixelRepresentation, result.PhotometricInterpretation) == (1, "MONOCHROME1")
    assert (float(result.RescaleSlope), float(result.RescaleIntercept)) == (2.0, -1024.0)
    assert "NumberOfFrames" not in result
    np.testing.assert_array_equal(result.pixel_array, pixels)  # an unchanged image gives the same stored values


def test_derived_dicoms_of_one_series_share_one_new_series(tmp_path):
    import pydicom
    from pydicom.uid import generate_uid

    series = generate_uid()
    uids = {}
    for name in ("a", "b"):
        dicom_source(tmp_path / f"{name}.dcm", np.zeros((4, 4), np.uint16), bits_stored=16,
                     attributes={"SeriesInstanceUID": series})
        image_io.write_derived_dicom(str(tmp_path / f"{name}-out.dcm"), [np.zeros((4, 4, 1))],
                                     str(tmp_path / f"{name}.dcm"), "x", "y", series_uid=uids)
    a, b = (pydicom.dcmread(tmp_path / f"{name}-out.dcm") for name in ("a", "b"))
    assert a.SeriesInstanceUID == b.SeriesInstanceUID != series and a.SOPInstanceUID != b.SOPInstanceUID


# ------------------------------------------------------------------------------ channels
def test_rgb_to_gray_uses_bt601_luma(tmp_path):
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0], rgb[0, 1], rgb[0, 2] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    rgb[1, :] = (100, 150, 200)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    gray = image_io.read_image(str(tmp_path / "rgb.png"), channels=1)
    assert gray.shape == (2, 3, 1)
    np.testing.assert_allclose(gray[0, :, 0], [0.299, 0.587, 0.114], atol=1e-6)
    np.testing.assert_allclose(gray[1, 0, 0], (0.299 * 100 + 0.587 * 150 + 0.114 * 200) / 255, atol=1e-6)


def test_gray_to_rgb_replicates_and_none_keeps(tmp_path):
    image_io.write_image(str(tmp_path / "g.png"), gradient())
    rgb = image_io.read_image(str(tmp_path / "g.png"), channels=3)
    assert rgb.shape == (24, 32, 3)
    assert np.array_equal(rgb[..., 0], rgb[..., 2])
    assert image_io.read_image(str(tmp_path / "g.png")).shape == (24, 32, 1)


def test_alpha_is_dropped(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0  # fully transparent red
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(rgba[..., [0, 3]], "LA").save(tmp_path / "la.png")
    image = image_io.read_image(str(tmp_path / "a.png"))
    assert image.shape == (4, 4, 3)
    np.testing.assert_allclose(image[..., 0], 200 / 255)
    assert image_io.read_image(str(tmp_path / "la.png")).shape == (4, 4, 1)


# ------------------------------------------------------------------------------ bad files
def make_bad_files(folder):
    """Writes a zero-byte, a truncated and a fake PNG. Returns their paths by kind."""
    image_io.write_image(str(folder / "good.png"), np.random.default_rng(0).random((64, 64)))
    data = (folder / "good.png").read_bytes()
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    (folder / "text.png").write_text("this is not an image\n")
    return {name: str(folder / f"{name}.png") for name in ("empty", "truncated", "text")}


@pytest.mark.parametrize("kind", ["empty", "truncated", "text"])
def test_unreadable_file_raises_input_error_naming_it(tmp_path, kind):
    bad = make_bad_files(tmp_path)[kind]
    with pytest.raises(InputError, match=os.path.basename(bad)):
        image_io.read_image(bad)


def test_truncated_jpeg_is_caught(tmp_path):
    image_io.write_image(str(tmp_path / "a.jpg"), np.random.default_rng(0).random((64, 64)))
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError, match="cut.jpg"):
        image_io.read_image(str(tmp_path / "cut.jpg"))


def test_scan_skips_bad_files_by_name_with_count(tmp_path, caplog):
    bad = make_bad_files(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ssp_keras.data.listing"):
        readable, skipped = image_io.scan_images(str(tmp_path), channels=1)
    assert readable == [str(tmp_path / "good.png")]
    assert sorted(path for path, _ in skipped) == sorted(bad.values())
    assert all(reason for _, reason in skipped)
    for path in bad.values():
        assert path in caplog.text
    assert "skipped 3 of 4 files" in caplog.text


def test_scan_accepts_files_and_rejects_all_bad(tmp_path):
    bad = make_bad_files(tmp_path)
    readable, skipped = image_io.scan_images([str(tmp_path / "good.png"), bad["text"]])
    assert len(readable) == 1 and len(skipped) == 1
    with pytest.raises(InputError, match="no readable image"):
        image_io.scan_images(list(bad.values()))
    with pytest.raises(InputError, match="typo.png"):
        image_io.scan_images([str(tmp_path / "good.png"), str(tmp_path / "typo.png")])


# ------------------------------------------------------------------------------ listing
def test_list_images_recursive_sorted_filtered(tmp_path):
    names = ["b.PNG", "a.jpg", "sub/c.TIF", "sub/deeper/d.dcm", "notes.txt", "noextension", ".hidden.png"]
    for relative in names:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "e.png").write_bytes(b"x")
    found = image_io.list_images(str(tmp_path))
    expected = ["a.jpg", "b.PNG", "sub/c.TIF", "sub/deeper/d.dcm"]
    assert found == sorted(str(tmp_path / name) for name in expected)


def test_list_images_missing_or_empty_folder(tmp_path):
    with pytest.raises(InputError, match="nowhere"):
        image_io.list_images(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(InputError, match="empty"):
        image_io.list_images(str(tmp_path / "empty"))
    with pytest.raises(InputError, match="empty"):
        image_io.scan_images(str(tmp_path / "empty"))


# ------------------------------------------------------------------------------ writing
def test_write_rejects_bad_requests(tmp_path):
    with pytest.raises(ValueError, match="bit_depth=16"):
        image_io.write_image(str(tmp_path / "a.jpg"), gradient(), bit_depth=16)
    with pytest.raises(InputError, match="a.webp"):
        image_io.write_image(str(tmp_path / "a.webp"), gradient())
    with pytest.raises(ValueError, match="NaN"):
        image_io.write_image(str(tmp_path / "a.png"), np.full((4, 4), np.nan))
    assert not os.listdir(tmp_path)


def test_write_clips_out_of_range(tmp_path):
    image_io.write_image(str(tmp_path / "a.png"), np.array([[-0.5, 0.5, 1.5]]))
    np.testing.assert_allclose(image_io.read_image(str(tmp_path / "a.png"))[0, :, 0], [0, 128 / 255, 1])


def test_read_image_shape_without_decoding(tmp_path):
    image_io.write_image(str(tmp_path / "a.png"), gradient(10, 20, 3))
    image_io.write_image(str(tmp_path / "b.tif"), gradient(12, 8), bit_depth=16)
    write_dicom(tmp_path / "c.dcm", np.zeros((5, 7), np.uint16), bits_stored=12)
    assert image_io.read_image_shape(str(tmp_path / "a.png")) == (10, 20, 3)
    assert image_io.read_image_shape(str(tmp_path / "b.tif")) == (12, 8, 1)
    assert image_io.read_image_shape(str(tmp_path / "c.dcm")) == (5, 7, 1)


# ------------------------------------------------------------------------------ bundled data
DATA = pathlib.Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("name", ["synthetic", "ccmid"])
def test_bundled_sample_sets_are_complete_and_readable(name):
    root = DATA / name
    if not root.is_dir():
        pytest.skip(f"data/{name} is not in this checkout")
    names = {}
    for sub in ("trainA", "trainB", "testA", "testB"):
        readable, skipped = image_io.scan_images(str(root / sub), channels=1)
        assert not skipped
        names[sub] = [os.path.basename(path) for path in readable]
    assert names["testA"] == names["testB"]  # test pairs share names
    assert not set(names["testA"]) & (set(names["trainA"]) | set(names["trainB"]))
    if (root / "masks").is_dir():
        assert [os.path.basename(p) for p in image_io.list_images(str(root / "masks"))] == names["testA"]
    if name == "ccmid":
        split = (root / "SPLIT.md").read_text()
        for sub, files in names.items():
            for file_name in files:
                assert f"`{file_name}`" in split, f"{sub}/{file_name} missing from SPLIT.md"
        assert set(names["trainA"]).isdisjoint(names["trainB"])  # unpaired: different frames


def test_bundled_data_stays_small():
    if not DATA.is_dir():
        pytest.skip("data/ is not in this checkout")
    total = sum(path.stat().st_size for path in DATA.rglob("*") if path.is_file())
    assert total < 3 * 2**20
