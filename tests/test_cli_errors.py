"""What the terminal shows: one line per user error, before TensorFlow loads where none is needed,
none of TensorFlow's C++ start-up lines unless --verbose, and no tracebacks for a server that does
not speak HTTP or a model file that is not one."""

import os
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

from ssp_keras import runtime
from ssp_keras.cli.main import main
from ssp_keras.data.io import write_image
from ssp_keras.errors import InputError

NOISE_WORDS = ("absl", "cuInit", "oneDNN", "cudart")


def _terminal_env():
    """The environment of a user's terminal: no setting that quiets TensorFlow."""
    env = dict(os.environ)
    for name in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES"):
        env.pop(name, None)
    return env


def _ssp_net(*args, cwd, timeout=300):
    """``ssp-net ARGS`` as a user runs it (re-executed with tcmalloc where installed)."""
    return subprocess.run([sys.executable, "-m", "ssp_keras.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=_terminal_env(), cwd=cwd)


def _image(path, size=(40, 56)):
    write_image(str(path), np.random.default_rng(0).random((*size, 1)).astype(np.float32))
    return path


# ------------------------------------------------------------------------------ TensorFlow's lines
def test_an_error_is_one_line_without_tensorflow_start_up_lines(tmp_path):
    _image(tmp_path / "x.png")
    result = _ssp_net("enhance", "--model", "does-not-exist", "x.png", "--out", "o", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ssp-net enhance: error: model not found: 'does-not-exist'"), lines
    assert not any(word in result.stderr for word in NOISE_WORDS)
    assert not os.path.exists(tmp_path / "o")


def _pretrained_or_skip():
    from ssp_keras.pretrained import pretrained_path

    try:
        pretrained_path("ccmid-lite")
    except ValueError:
        pytest.skip("the bundled ccmid-lite model is not on this machine")


@pytest.mark.slow
def test_tensorflow_lines_only_with_verbose(tmp_path):
    _pretrained_or_skip()
    image = _image(tmp_path / "frame.png")
    quiet = _ssp_net("enhance", "--model", "ccmid-lite", image, "--out", tmp_path / "quiet", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "Enhanced 1 image(s)" in quiet.stdout
    assert not [line for line in quiet.stderr.splitlines() if any(word in line for word in NOISE_WORDS)], quiet.stderr
    assert quiet.stderr == ""

    verbose = _ssp_net("--verbose", "enhance", "--model", "ccmid-lite", image, "--out", tmp_path / "verbose",
                       cwd=tmp_path)
    assert verbose.returncode == 0, verbose.stderr
    assert [line for line in verbose.stderr.splitlines() if runtime.is_tensorflow_startup_noise(line.encode())]


def test_filtered_stderr_keeps_everything_but_the_start_up_lines(capfd):
    with runtime.filtered_stderr():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1796287988.696190    5322 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"ours, before\n")
        os.write(2, b"E0000 00:00:1796288044.225845    5506 cuda_platform.cc:52] failed call to cuInit: x\n")
        os.write(2, b"F0000 00:00:1796288044.225845    5506 check.cc:1] a fatal line stays\n")
        os.write(2, b"ours, after\n")
    assert capfd.readouterr().err == (
        "ours, before\nF0000 00:00:1796288044.225845    5506 check.cc:1] a fatal line stays\nours, after\n"
    )


def test_the_import_filter_is_gone_after_an_in_process_call(tmp_path):
    assert main(["metrics", str(tmp_path / "none.png")]) == 2
    assert not [finder for finder in sys.meta_path if type(finder).__name__ == "_QuietImportFinder"]


# ------------------------------------------------------------------------------ fail fast
#: Each: arguments (``{tmp}`` = a scratch folder, ``{file}`` = an existing file, ``{data}`` = a
#: CORN root) and a piece of the one-line error. All must be reported before TensorFlow loads.
EARLY_ERRORS = [
    (["train", "--lq", "{tmp}/nope", "--hq", "{data}/trainB", "--out", "{tmp}/run"], "not found: '{tmp}/nope'"),
    (["train", "--data", "{tmp}/nope", "--out", "{tmp}/run"], "is not a CORN-style data root"),
    (["train", "--data", "{data}", "--out", "{file}"], "is an existing file, not a folder"),
    (["train", "--data", "{data}", "--out", "{file}/run"], "is a file, not a folder"),
    (["train", "--data", "{data}", "--init-from", "nope", "--out", "{tmp}/run"], "model not found: 'nope'"),
    (["train", "--data", "{data}", "--preset", "lite", "--image-size", "100", "--out", "{tmp}/run"], "data.image_size"),
    (["evaluate", "--model", "nope", "--images", "{data}/trainA", "--out", "{tmp}/r"], "model not found: 'nope'"),
    (["evaluate", "--images", "{tmp}/nope", "--out", "{tmp}/r"], "images folder not found"),
    (["demo", "--data", "{tmp}/nope", "--out", "{tmp}/d"], "is not a CORN-style data root"),
    (["demo", "--init-from", "nope", "--out", "{tmp}/d"], "model not found: 'nope'"),
    (["segmenter", "train", "--images", "{tmp}/nope", "--labels", "{tmp}/nope", "--out", "{tmp}/s"], "folder not found"),
    (["metrics", "{tmp}/nope.png"], "image not found"),
    (["predict", "--server", "127.0.0.1:1", "{tmp}/nope.png", "--out", "{tmp}/p"], "not found"),
]

_WITHOUT_TENSORFLOW = """
import sys
sys.modules["tensorflow"] = None  # any import of TensorFlow fails
from ssp_keras.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("argv, message", EARLY_ERRORS, ids=lambda value: " ".join(value)[:40] if isinstance(value, list) else "")
def test_bad_input_is_reported_before_tensorflow_loads(tmp_path, argv, message):
    data = tmp_path / "data"
    for name in ("trainA", "trainB"):
        (data / name).mkdir(parents=True)
        _image(data / name / "a.png")
    taken = tmp_path / "taken.txt"
    taken.write_text("mine")
    fill = lambda text: text.format(tmp=tmp_path, file=taken, data=data)  # noqa: E731
    result = subprocess.run([sys.executable, "-c", _WITHOUT_TENSORFLOW, *map(fill, argv)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ssp-net {argv[0]}: error: ") and fill(message) in lines[0], lines
    assert taken.read_text() == "mine"


# ------------------------------------------------------------------------------ one line, no traceback
def test_a_rest_server_that_does_not_speak_http_is_one_line(tmp_path, capsys):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)  # short, so the thread sees `stop` soon after the test is done
    port = listener.getsockname()[1]
    stop = threading.Event()

    def answer_garbage():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:  # closed
                return
            with connection:
                connection.settimeout(5)
                try:
                    connection.recv(65536)
                    connection.sendall(b"\x00\x01 this is no HTTP \xff\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    try:
        code = main(["predict", "--server", f"127.0.0.1:{port}", "--rest", "--retries", "0", "--timeout", "10",
                     str(_image(tmp_path / "frame.png")), "--out", str(tmp_path / "out")])
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=10)
    error = capsys.readouterr().err
    assert code == 1
    assert error.count("\n") == 1 and "Traceback" not in error
    assert error.startswith(f"ssp-net predict: error: REST server 127.0.0.1:{port} did not answer like TensorFlow "
                            "Serving's REST API (BadStatusLine"), error


def test_a_corrupt_model_file_says_it_exists_but_is_unreadable(tmp_path, capsys):
    from ssp_keras.inference.loading import load_generator

    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 truncated")
    before = broken.read_bytes()
    assert main(["enhance", "--model", str(broken), str(_image(tmp_path / "frame.png")), "--out",
                 str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "File not found" not in error
    assert f"the model file '{broken}' exists but is not a readable Keras model: it is not a zip archive" in error
    assert broken.read_bytes() == before

    import zipfile

    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as archive:
        archive.writestr("other.txt", "no model here")
    with pytest.raises(InputError, match="exists but is not a readable Keras model: There is no item named 'config.json'"):
        load_generator(str(tmp_path / "empty.keras"))
