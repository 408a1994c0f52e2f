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


def test_outputs_beside_input_files_can_be_allowed(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.png").write_bytes(b"x")
    check_output_location(str(inputs / "results"), [str(inputs / "a.png")], allow_beside_files=True)
    with pytest.raises(ValueError, match="input folder"):  # a folder given as input stays refused
        check_output_location(str(inputs / "results"), [str(inputs)], allow_beside_files=True)


def test_stale_staging_folders_are_told_from_live_ones(tmp_path):
    import subprocess
    import sys

    from ssp_keras.utils.files import make_staging_dir, pid_is_alive, remove_stale_temporaries

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_is_alive(child.pid) and pid_is_alive(os.getpid())
    live = make_staging_dir(str(tmp_path), "v1")
    stale = tmp_path / os.path.basename(live).replace(f".tmp-{os.getpid()}-", f".tmp-{child.pid}-", 1)
    stale.mkdir()
    (stale / "half.bin").write_bytes(b"x")
    unrelated = tmp_path / ".tmp-notours"
    unrelated.mkdir()
    assert remove_stale_temporaries(str(tmp_path)) == [str(stale)]
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(live), ".tmp-notours"])
