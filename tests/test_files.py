import os
import stat

import pytest

from ssp_keras.utils.files import atomic_save, atomic_write_bytes, check_output_location


def test_atomic_write_replaces_whole_files_with_ordinary_permissions(tmp_path):
    path = tmp_path / "out" / "report.json"
    atomic_write_bytes(str(path), b"first")
    atomic_write_bytes(str(path), b"second")
    assert path.read_bytes() == b"second"
    assert os.listdir(path.parent) == ["report.json"]  # no temporary file left behind
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_a_failed_save_leaves_the_previous_file(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"good")

    def crash(temporary):
        with open(temporary, "wb") as handle:
            handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_save(str(path), crash)
    assert path.read_bytes() == b"good" and os.listdir(tmp_path) == ["model.keras"]


def test_outputs_inside_inputs_are_refused(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.png").write_bytes(b"x")
    with pytest.raises(ValueError, match="input folder"):
        check_output_location(str(inputs / "enhanced"), [str(inputs)])
    with pytest.raises(ValueError, match="input file"):
        check_output_location(str(inputs), [str(inputs / "a.png")])
    check_output_location(str(tmp_path / "elsewhere"), [str(inputs)])
