"""`ssp_keras.runtime`: the CPU settings the `ssp-net` command applies before TensorFlow loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ssp_keras import runtime


@pytest.fixture
def fake_tcmalloc(tmp_path):
    library = tmp_path / "libtcmalloc_minimal.so.4"
    library.write_bytes(b"")
    return str(library)


def test_settings_added_where_unset(fake_tcmalloc):
    env = runtime.cpu_settings_environment({"SSP_TCMALLOC": fake_tcmalloc, "LD_PRELOAD": "/opt/libother.so"})
    assert env["TF_ENABLE_ONEDNN_OPTS"] == "1"
    assert env["LD_PRELOAD"] == f"{fake_tcmalloc}:/opt/libother.so"
    assert int(env["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"]) >= 1 << 40


def test_user_choices_are_kept(fake_tcmalloc):
    env = runtime.cpu_settings_environment(
        {"SSP_TCMALLOC": fake_tcmalloc, "TF_ENABLE_ONEDNN_OPTS": "0", "LD_PRELOAD": "/x/libtcmalloc.so.4"}
    )
    assert env["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert env["LD_PRELOAD"] == "/x/libtcmalloc.so.4"  # already preloads a tcmalloc: not added twice


@pytest.mark.parametrize("value", ["0", "off", "False"])
def test_switch_turns_everything_off(fake_tcmalloc, value):
    environ = {"SSP_TCMALLOC": fake_tcmalloc, runtime.SWITCH: value}
    assert runtime.cpu_settings_environment(environ) == environ


def test_no_tcmalloc_installed_means_no_preload(tmp_path):
    env = runtime.cpu_settings_environment({"SSP_TCMALLOC": str(tmp_path / "missing.so")})
    assert "LD_PRELOAD" not in env
    assert env["TF_ENABLE_ONEDNN_OPTS"] == "1"


def test_prepare_process_is_a_no_op_once_tensorflow_is_loaded(monkeypatch):
    import tensorflow  # noqa: F401  (the test process has it loaded anyway)

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    runtime.prepare_process(["--help"])
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ


def test_prepare_process_relaunches_with_the_preload_once(tmp_path, fake_tcmalloc):
    """In a fresh process: variables set, the process re-executed once with tcmalloc preloaded and
    its arguments intact. The real library when this machine has it; else an empty stand-in, which
    the loader refuses, and the relaunch mark must stop a second re-exec."""
    (tmp_path / "probe_runtime.py").write_text(
        "import os, sys\n"
        "from ssp_keras import runtime\n"
        "runtime.prepare_process(sys.argv[1:], module='probe_runtime')\n"
        "print('ONEDNN', os.environ.get('TF_ENABLE_ONEDNN_OPTS'), 'RELAUNCHED',"
        " os.environ.get('SSP_KERAS_RELAUNCHED'), 'LOADED', runtime.tcmalloc_loaded(), 'ARGV', sys.argv[1:])\n"
    )
    real = runtime.tcmalloc_path({})
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "LD_PRELOAD", runtime.SWITCH)}
    env.update(PYTHONPATH=os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")]), SSP_TCMALLOC=real or fake_tcmalloc)
    result = subprocess.run(
        [sys.executable, "-m", "probe_runtime", "a b", "--c"], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"ONEDNN 1 RELAUNCHED 1 LOADED {real is not None} ARGV ['a b', '--c']" in result.stdout

    env[runtime.SWITCH] = "0"
    result = subprocess.run(
        [sys.executable, "-m", "probe_runtime"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert "ONEDNN None RELAUNCHED None LOADED False" in result.stdout


def test_describe_names_both_settings(monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    line = runtime.describe()
    assert line.startswith("CPU settings: TF_ENABLE_ONEDNN_OPTS=1, allocator ")
    assert ("allocator tcmalloc" in line) == runtime.tcmalloc_loaded()
    assert runtime.SWITCH in line
