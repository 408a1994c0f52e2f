"""DICOM: decoding (modality LUT applied, scaled by the stored bit depth) and derived DICOM files.

Reading (`decode_dicom`, called by `ssp_keras.data.reading`): the modality LUT / rescale slope
and intercept are applied, values are scaled by the range the stored bits can hold
(`dicom_value_range`), MONOCHROME1 is inverted; every frame of a multi-frame file.
Writing (`write_derived_dicom`): the enhanced frames as a derived DICOM (patient and study kept,
new series) at the source's stored bit depth, written atomically.
"""

from __future__ import annotations

import copy
import datetime
import io
from typing import Dict, List, NamedTuple, Sequence, Tuple, Union

import numpy as np

from ssp_keras.data.decoding import Decoded, UnreadableImageError, describe_error
from ssp_keras.utils.files import atomic_write_bytes


def decode_dicom(path: str, all_frames: bool = False) -> Decoded:
    """The first frame (or every frame) of a DICOM file, modality LUT applied, as float in [0, 1].

    Scaled by the range the stored bits can hold (BitsStored, signed or not, mapped through the
    rescale slope/intercept), not by the frame's own min/max, so brightness is comparable between
    files and frames. MONOCHROME1 (white = 0) is inverted. `dicom_value_range` gives that range.
    """
    import pydicom
    from pydicom.pixels import apply_modality_lut

    dataset = pydicom.dcmread(path, force=True)
    if "PixelData" not in dataset:
        raise UnreadableImageError(path, "DICOM file has no pixel data")
    total = int(dataset.get("NumberOfFrames", 1) or 1)
    if total > 1 and not all_frames:
        dataset.pixel_array_options(index=0)  # decode only the first frame, not the whole volume
    pixels = dataset.pixel_array
    samples_per_pixel = int(dataset.get("SamplesPerPixel", 1))
    bits_stored = int(dataset.get("BitsStored", dataset.get("BitsAllocated", 16)))
    stacked = pixels if total > 1 and all_frames else pixels[np.newaxis]
    frames = []
    if samples_per_pixel == 1:
        low, high = dicom_value_range(dataset)
        inverted = str(dataset.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1"
        for frame in stacked:  # frame by frame: float64 of a whole volume is 8 bytes a sample
            image = (apply_modality_lut(frame, dataset).astype(np.float64) - low) / max(high - low, 1e-12)
            if inverted:
                image = 1.0 - image
            frames.append(np.clip(image, 0.0, 1.0).astype(np.float32))
    else:  # colour DICOM: pydicom already converted YBR to RGB
        for frame in stacked:
            frames.append(np.clip(frame.astype(np.float64) / (2**bits_stored - 1), 0.0, 1.0).astype(np.float32))
    return Decoded(frames, bits_stored, "dicom", str(pixels.dtype), total_frames=total)


def dicom_value_range(dataset) -> Tuple[float, float]:
    """``(low, high)``: the modality values (after rescale or LUT) that read as 0 and 1.

    The smallest and largest value the stored bits (BitsStored, PixelRepresentation) map to
    through the modality LUT or rescale slope/intercept of ``dataset`` (a pydicom Dataset).
    """
    from pydicom.pixels import apply_modality_lut

    bits_stored = int(dataset.get("BitsStored", dataset.get("BitsAllocated", 16)))
    stored_low, stored_high = _stored_range(dataset)
    if bits_stored <= 16:  # a LUT may be non-monotonic: map every stored value
        stored_range = np.arange(stored_low, stored_high + 1)
    else:
        stored_range = np.array([stored_low, stored_high])
    mapped = apply_modality_lut(stored_range, dataset)
    return float(np.min(mapped)), float(np.max(mapped))


def _stored_range(dataset) -> Tuple[int, int]:
    bits_stored = int(dataset.get("BitsStored", dataset.get("BitsAllocated", 16)))
    if int(dataset.get("PixelRepresentation", 0)) == 1:
        return -(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1
    return 0, 2**bits_stored - 1


#: Elements of the source that describe pixel values the derived image no longer has.
_DICOM_DROPPED = (
    "PixelData", "FloatPixelData", "DoubleFloatPixelData", "ModalityLUTSequence", "IconImageSequence",
    "SmallestImagePixelValue", "LargestImagePixelValue", "SmallestPixelValueInSeries",
    "LargestPixelValueInSeries", "PixelPaddingValue", "PixelPaddingRangeLimit", "PlanarConfiguration",
    "RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData", "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData", "PaletteColorLookupTableUID", "SourceImageSequence",
)
#: Elements that only mean something for grayscale pixels (dropped when writing RGB).
_DICOM_GRAY_ONLY = ("RescaleSlope", "RescaleIntercept", "RescaleType", "WindowCenter", "WindowWidth",
                    "WindowCenterWidthExplanation", "VOILUTFunction", "VOILUTSequence")


def _dicom_header(path: str):
    """A DICOM file's data set without its pixels."""
    import pydicom

    return pydicom.dcmread(path, force=True, stop_before_pixels=True)


def dicom_frame_count(path: str) -> int:
    """NumberOfFrames from a DICOM file's header (1 when absent or unreadable)."""
    try:
        return max(int(_dicom_header(path).get("NumberOfFrames", 1) or 1), 1)
    except Exception:  # unreadable files are reported when they are decoded
        return 1


def dicom_shape(path: str) -> Tuple[int, int, int]:
    """``(rows, columns, channels)`` of a DICOM file from its header (channels 1 or 3); raises
    whatever pydicom raises for a header without them."""
    dataset = _dicom_header(path)
    return int(dataset.Rows), int(dataset.Columns), 1 if int(dataset.get("SamplesPerPixel", 1)) == 1 else 3


def write_derived_dicom(
    path: str,
    frames: Sequence[np.ndarray],
    source: str,
    series_description: str,
    derivation_description: str,
    series_uid: Union[str, Dict[str, str], None] = None,
) -> None:
    """Writes ``frames`` (float [0, 1] ``[H, W(, 1|3)]``, all one size) as a DICOM derived from ``source``.

    The result copies the source's header (patient, study, equipment, geometry, SOP class), and
    gets: a new SOP Instance UID, a Series Instance UID (``series_uid`` when a string; when a dict,
    the one it maps the source's series to, added if missing, so that the files of one source
    series stay one derived series; a new one when None), ImageType
    ``DERIVED\\SECONDARY`` (the source's further values kept), the given SeriesDescription (cut to
    64 characters) and DerivationDescription, a SourceImageSequence naming the source instance,
    and NumberOfFrames = ``len(frames)``. Pixels are stored at the source's BitsAllocated /
    BitsStored / PixelRepresentation, spread over the range the source's stored values could hold,
    with a rescale slope/intercept (when the source had a modality transform) that maps them onto
    the source's modality value range: reading the result with `read_frames` gives back
    ``frames`` to within one stored level. MONOCHROME1 sources stay MONOCHROME1. Uncompressed
    (Explicit VR Little Endian), written atomically.
    """
    images = [_dicom_frame(path, frame) for frame in frames]
    if not images:
        raise ValueError(f"cannot write '{path}': no frames given")
    if len({image.shape for image in images}) > 1:
        sizes = sorted({image.shape for image in images})
        raise ValueError(f"cannot write '{path}': DICOM frames must share one size, got {sizes}")
    try:
        original = _dicom_header(source)
    except Exception as error:
        raise UnreadableImageError(source, describe_error(error)) from error
    dataset = copy.deepcopy(original)  # the header; pixel descriptions are rebuilt below
    _delete_elements(dataset, _DICOM_DROPPED)
    encoding = _DicomEncoding.of(original, channels=images[0].shape[-1])
    images = _set_value_transform(dataset, original, images, encoding)
    _set_pixels(dataset, original, images, encoding)
    _set_derivation(dataset, original, source, series_uid, series_description, derivation_description)
    _save_dicom(dataset, path)


class _DicomEncoding(NamedTuple):
    """How a derived DICOM stores its pixels: the source's bit layout, within what it can hold."""

    channels: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    stored_low: int
    stored_high: int
    photometric: str

    @classmethod
    def of(cls, original, channels: int) -> "_DicomEncoding":
        source_gray = int(original.get("SamplesPerPixel", 1)) == 1
        bits_allocated = int(original.get("BitsAllocated", 16))
        if bits_allocated not in (8, 16, 32):
            bits_allocated = 16
        bits_stored = min(int(original.get("BitsStored", bits_allocated)), bits_allocated)
        signed = channels == 1 and source_gray and int(original.get("PixelRepresentation", 0)) == 1
        if signed:
            stored_low, stored_high = -(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1
        else:
            stored_low, stored_high = 0, 2**bits_stored - 1
        if channels == 1:
            source_photometric = str(original.get("PhotometricInterpretation", "")).upper()
            photometric = "MONOCHROME1" if source_photometric == "MONOCHROME1" else "MONOCHROME2"
        else:
            photometric = "RGB"
        return cls(channels, bits_allocated, bits_stored, signed, stored_low, stored_high, photometric)

    def store(self, images: Sequence[np.ndarray]) -> bytes:
        """Float [0, 1] frames as the stored values' bytes (even length, as DICOM values are)."""
        sizes = {8: "1", 16: "2", 32: "4"}
        kind = ("<i" if self.signed else "<u") + sizes[self.bits_allocated]
        low, high = self.stored_low, self.stored_high
        stored = np.stack([
            np.clip(np.round(low + image.astype(np.float64) * (high - low)), low, high) for image in images
        ]).astype(kind)
        if self.channels == 1:
            stored = stored[..., 0]
        data = stored.tobytes()
        return data + b"\0" if len(data) % 2 else data


def _delete_elements(dataset, keywords: Sequence[str]) -> None:
    for keyword in keywords:
        if keyword in dataset:
            del dataset[keyword]


def _set_value_transform(dataset, original, images: List[np.ndarray], encoding: _DicomEncoding) -> List[np.ndarray]:
    """Photometric inversion, rescale slope/intercept or the colour elements; returns the frames to store.

    The rescale (when the source had a modality transform) maps the stored range onto the source's
    modality value range; MONOCHROME1 frames are stored inverted (`read_frames` inverts them back).
    """
    from pydicom.valuerep import DSfloat

    source_gray = int(original.get("SamplesPerPixel", 1)) == 1
    if encoding.channels != 1:
        _delete_elements(dataset, _DICOM_GRAY_ONLY)
        dataset.PlanarConfiguration = 0
        return images
    if encoding.photometric == "MONOCHROME1":
        images = [1.0 - image for image in images]
    if source_gray and ("RescaleSlope" in original or "ModalityLUTSequence" in original):
        low, high = dicom_value_range(original)
        slope = (high - low) / (encoding.stored_high - encoding.stored_low)
        dataset.RescaleSlope = DSfloat(slope, auto_format=True)
        dataset.RescaleIntercept = DSfloat(low - slope * encoding.stored_low, auto_format=True)
        if "RescaleType" not in dataset and "ModalityLUTSequence" in original:
            lut_type = original.ModalityLUTSequence[0].get("ModalityLUTType")
            if lut_type:
                dataset.RescaleType = lut_type
    elif not source_gray:
        _delete_elements(dataset, _DICOM_GRAY_ONLY)
    return images


def _set_pixels(dataset, original, images: List[np.ndarray], encoding: _DicomEncoding) -> None:
    """The image pixel module: size, layout and PixelData."""
    height, width, channels = images[0].shape
    dataset.Rows, dataset.Columns = height, width
    dataset.SamplesPerPixel = channels
    dataset.PhotometricInterpretation = encoding.photometric
    dataset.BitsAllocated = encoding.bits_allocated
    dataset.BitsStored = encoding.bits_stored
    dataset.HighBit = encoding.bits_stored - 1
    dataset.PixelRepresentation = 1 if encoding.signed else 0
    if len(images) > 1 or "NumberOfFrames" in original:
        dataset.NumberOfFrames = len(images)
    dataset.PixelData = encoding.store(images)
    dataset["PixelData"].VR = "OB" if encoding.bits_allocated == 8 else "OW"


def _set_derivation(dataset, original, source: str, series_uid, series_description: str,
                    derivation_description: str) -> None:
    """New instance and series, ImageType DERIVED, descriptions, the source reference, dates."""
    import pydicom
    from pydicom.uid import SecondaryCaptureImageStorage, generate_uid

    sop_class = original.get("SOPClassUID") or SecondaryCaptureImageStorage
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = generate_uid()
    if isinstance(series_uid, dict):
        series_uid = series_uid.setdefault(str(original.get("SeriesInstanceUID", "")) or source, generate_uid())
    dataset.SeriesInstanceUID = series_uid or generate_uid()
    image_type = list(original.get("ImageType", []) or [])
    dataset.ImageType = ["DERIVED", "SECONDARY"] + [str(value) for value in image_type[2:]]
    dataset.SeriesDescription = series_description[:64]
    dataset.DerivationDescription = derivation_description[:1024]
    if "SOPInstanceUID" in original:
        reference = pydicom.Dataset()
        reference.ReferencedSOPClassUID = original.get("SOPClassUID", sop_class)
        reference.ReferencedSOPInstanceUID = original.SOPInstanceUID
        dataset.SourceImageSequence = [reference]
    now = datetime.datetime.now()
    dataset.InstanceCreationDate = dataset.ContentDate = now.strftime("%Y%m%d")
    dataset.InstanceCreationTime = dataset.ContentTime = now.strftime("%H%M%S")


def _save_dicom(dataset, path: str) -> None:
    """Explicit VR Little Endian with its file meta, written atomically."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    atomic_write_bytes(path, buffer.getvalue())


def _dicom_frame(path: str, image: np.ndarray) -> np.ndarray:
    """A float [0, 1] ``[H, W, 1|3]`` frame for DICOM, or ValueError naming ``path``."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"cannot write '{path}': frames must be [H, W], [H, W, 1] or [H, W, 3], got {image.shape}")
    if not np.all(np.isfinite(image)):
        raise ValueError(f"cannot write '{path}': image contains NaN or infinite values")
    return np.clip(image, 0.0, 1.0)
