"""When the file system says no: an --out that cannot be written is one line before any work, a
write that fails part-way (a full disk) is one line naming the file and what was written before,
and nothing half-written stays. One process at a time writes into an output folder."""

import errno
import os

import pytest

from ssp_keras.cli.main import main
from ssp_keras.data.io import read_image, write_image
from helpers import hold_folder, random_image, stale_temporary_name
from tiny import tiny_generator


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "generator.keras"
    tiny_generator(1).save(path)
    return path


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for index, name in enumerate(("a.png", "b.png", "c.png", "d.png")):
        write_image(str(folder / name), random_image(40, 48, seed=index))
    return folder


def _run(capsys, *argv):
    capsys.readouterr()
    code = main([str(item) for item in argv])
    return code, capsys.readouterr().err.splitlines()


def _temporaries(folder):
    return [name for _, _, names in os.walk(folder) for name in names if name.startswith(".tmp-")]


# ------------------------------------------------------------------------------ before any work
def test_an_out_below_a_file_is_one_line_for_every_command(model_file, inputs, tmp_path, capsys):
    blocker = tmp_path / "taken.txt"
    blocker.write_text("mine")
    out = blocker / "out"
    commands = [
        ["enhance", "--model", model_file, inputs, "--out", out],
        ["predict", "--server", "127.0.0.1:1", "--retries", "0", inputs, "--out", out],
        ["export", "--model", model_file, "--base", out],
        ["evaluate", "--images", inputs, "--baselines", "clahe", "--out", out],
        ["segmenter", "train", "--out", out],
        ["train", "--lq", inputs, "--hq", inputs, "--out", out],
        ["demo", "--out", out],
    ]
    for argv in commands:
        code, lines = _run(capsys, *argv)
        assert code == 2 and len(lines) == 1, (argv[0], lines)
        assert f"'{blocker}' is a file, not a folder" in lines[0], lines
    assert blocker.read_text() == "mine"


def test_an_out_that_cannot_be_written_is_one_line_before_the_model_loads(model_file, inputs, tmp_path, capsys,
                                                                         monkeypatch):
    """A read-only or foreign --out: creating a file in it fails (simulated here: tests run as root,
    which writes into read-only folders; the next test does it for real where it can)."""
    import ssp_keras.inference.loading as loading

    out = tmp_path / "readonly"
    out.mkdir()
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if str(path).startswith(str(out)):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    monkeypatch.setattr(loading, "load_keras_file", lambda *args: pytest.fail("the model was loaded"))
    code, lines = _run(capsys, "enhance", "--model", model_file, inputs, "--out", out)
    assert code == 2 and lines == [f"ssp-net enhance: error: cannot write into --out '{out}': Permission denied"]
    code, lines = _run(capsys, "export", "--model", model_file, "--base", out)
    assert code == 2 and lines == [f"ssp-net export: error: cannot write into --base/--name '{out / 'ssp_net'}': "
                                   "Permission denied"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a folder whatever its mode")
def test_a_read_only_out_is_one_line(model_file, inputs, tmp_path, capsys):
    out = tmp_path / "readonly"
    out.mkdir()
    out.chmod(0o555)
    try:
        code, lines = _run(capsys, "enhance", "--model", model_file, inputs, "--out", out)
        assert code == 2 and lines == [f"ssp-net enhance: error: cannot write into --out '{out}': Permission denied"]
    finally:
        out.chmod(0o755)


# ------------------------------------------------------------------------------ part-way
@pytest.fixture
def disk_full_after(monkeypatch):
    """``disk_full_after(n)``: atomic writes fail with ENOSPC once ``n`` have succeeded."""
    import ssp_keras.utils.files as files

    def arm(allowed):
        calls = {"count": 0}
        real_fsync = os.fsync

        def fsync(descriptor):
            calls["count"] += 1
            if calls["count"] > allowed:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_fsync(descriptor)

        monkeypatch.setattr(files.os, "fsync", fsync)

    return arm


def test_enhance_on_a_full_disk_names_the_file_and_what_was_written(model_file, inputs, tmp_path, capsys,
                                                                    disk_full_after):
    out = tmp_path / "out"
    disk_full_after(2)
    code, lines = _run(capsys, "enhance", "--model", model_file, inputs, "--out", out, "--quiet")
    assert code == 1 and lines == [
        f"ssp-net enhance: error: cannot write '{out / 'c.png'}': No space left on device; 2 of 4 output file(s) "
        f"were written into '{out}' before it, none is half-written"]
    assert sorted(os.listdir(out)) == ["a.png", "b.png"]  # no temporary file, no lock left
    assert all(read_image(str(out / name)).shape == (40, 48, 1) for name in ("a.png", "b.png"))  # whole images


def test_export_on_a_full_disk_publishes_nothing(model_file, tmp_path, capsys, monkeypatch):
    from ssp_keras.serving import export as export_module

    def full(model, path, **limits):
        with open(os.path.join(path, "saved_model.pb"), "wb") as stream:
            stream.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export_module, "write_signatures", full)
    code, lines = _run(capsys, "export", "--model", model_file, "--base", tmp_path / "models")
    assert code == 1 and lines == [
        f"ssp-net export: error: cannot write version 1 of model 'ssp_net' into '{tmp_path / 'models' / 'ssp_net'}': "
        "No space left on device; nothing was published (the partial version was removed)"]
    assert not (tmp_path / "models" / "ssp_net").exists()


def test_training_on_a_full_disk_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    from ssp_keras.data.synthetic import generate_dataset
    from ssp_keras.training import callbacks
    from tiny import tiny_config

    generate_dataset(str(tmp_path / "data"), count=2, size=64, seed=0, test_count=1)
    tiny_config(**{"train.image_grid_size": 1}).to_json(str(tmp_path / "tiny.json"))
    real_write = callbacks.atomic_write_bytes

    def write(path, data):
        if path.endswith("state-epoch0002.npz"):
            raise OSError(errno.ENOSPC, "No space left on device", path)
        real_write(path, data)

    monkeypatch.setattr(callbacks, "atomic_write_bytes", write)
    run_dir = tmp_path / "run"
    code, lines = _run(capsys, "train", "--data", tmp_path / "data", "--config", tmp_path / "tiny.json",
                       "--epochs", 3, "--steps-per-epoch", 1, "--verbose-fit", 0, "--out", run_dir)
    assert code == 1 and lines == [
        f"ssp-net train: error: cannot write '{run_dir / 'checkpoints' / 'state-epoch0002.npz'}': No space left on "
        "device; training stopped, the run keeps its checkpoint state-epoch0001.npz: free some space and run the "
        "same command to resume"], lines
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["state-epoch0001.npz"]
    assert _temporaries(run_dir) == []


# ------------------------------------------------------------------------------ one owner
def test_two_enhance_processes_do_not_write_into_one_out(model_file, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    holder = hold_folder(out, "ssp-net enhance")
    try:
        code, lines = _run(capsys, "enhance", "--model", model_file, inputs, "--out", out, "--overwrite")
        assert code == 2 and len(lines) == 1
        assert lines[0].startswith(f"ssp-net enhance: error: --out '{out}' is in use by another process "
                                   f"(pid {holder.pid} on ") and "ssp-net enhance, since" in lines[0]
        assert os.listdir(out) == [".ssp-net.lock"]
    finally:
        holder.kill()
        holder.wait()
    # A stale temporary file of the killed process goes when the next one takes the folder over.
    stale = out / stale_temporary_name("a.png", pid=holder.pid)
    stale.write_bytes(b"half")
    code, lines = _run(capsys, "enhance", "--model", model_file, inputs, "--out", out, "--quiet")
    assert code == 0, lines
    assert sorted(os.listdir(out)) == ["a.png", "b.png", "c.png", "d.png"]
