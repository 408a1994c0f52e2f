import os

# Quiet TensorFlow's start-up chatter and keep tests on the CPU.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import pathlib

import pytest

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def shared_data():
    """The project's shared development data, beside the checkout (present in CI)."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is not beside this checkout")
    return path


def write_test_dicom(path, pixels, bits_stored, photometric="MONOCHROME2", slope=None, intercept=None,
                     signed=False, **attributes):
    """A minimal valid DICOM file of 16-bit-allocated grayscale frames ([H, W] or [frames, H, W]).

    Shared by the reading tests and the enhance tests (DICOM in, DICOM out); ``attributes`` are
    further elements by keyword (``PatientName="Doe^Jane"``, ``StudyInstanceUID=...``).
    """
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
    if pixels.ndim == 3:  # several frames
        dataset.NumberOfFrames = pixels.shape[0]
    dataset.Rows, dataset.Columns = pixels.shape[-2:]
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = photometric
    dataset.BitsAllocated = 16
    dataset.BitsStored = bits_stored
    dataset.HighBit = bits_stored - 1
    dataset.PixelRepresentation = 1 if signed else 0
    if slope is not None:
        dataset.RescaleSlope = slope
        dataset.RescaleIntercept = intercept
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    dataset.PixelData = pixels.astype(np.int16 if signed else np.uint16).tobytes()
    dataset.save_as(str(path), enforce_file_format=True)


# ------------------------------------------------------------------------------ shared fixtures
# A module that needs other sizes or settings defines its own fixture of the same name.
@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A CORN root of two synthetic 64-pixel images a domain (trainA/, trainB/, testA/)."""
    from tiny import tiny_corn_root

    return tiny_corn_root(tmp_path_factory.mktemp("data"), count=2, size=64)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    """The tiny configuration as a ``--config`` file, with a 1x1 image grid (fast epoch ends)."""
    from tiny import tiny_config_file

    return tiny_config_file(tmp_path_factory.mktemp("config"), **{"train.image_grid_size": 1})


@pytest.fixture(scope="module")
def generator():
    """The tiny gray `SSPGenerator` with random weights (`tiny.tiny_generator`)."""
    from tiny import tiny_generator

    return tiny_generator(1)
