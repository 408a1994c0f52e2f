"""Every benchmark command printed in the documentation still runs: each ``python benchmarks/...``
(and ``bash benchmarks/...``) command in README.md, benchmarks/README.md and benchmarks/RESULTS.md
is run with ``--dry-run``, which parses and checks its arguments (variant tokens, settings, paths)
and exits without building anything. The dry run must not import TensorFlow, Keras or JAX: the
commands run in a process where importing them fails, so the whole file takes seconds.
"""

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
BENCHMARKS = REPOSITORY / "benchmarks"
DOCUMENTS = ("README.md", "benchmarks/README.md", "benchmarks/RESULTS.md")

#: Paths the documentation names for things a reader makes first (`git worktree add /tmp/base
#: <old commit>`): here, this checkout stands in for them.
PLACEHOLDERS = {"/tmp/base": str(REPOSITORY)}

# [ENV=VALUE ...] (python | .venv/bin/python | bash) benchmarks/NAME.(py|sh) ARGS, up to a closing
# backtick or quote, a table bar or the end of the line.
COMMAND = re.compile(r"""((?:[A-Z_]+=\S+\s+)*)(?:\S*/)?(?:python3?|bash)\s+(benchmarks/\w+\.(?:py|sh))([^`|"\n]*)""")

# A child that refuses to import the heavy frameworks, then runs the script as `python SCRIPT ARGS` would.
RUNNER = f"""
import os, runpy, sys
sys.path.insert(0, {str(REPOSITORY / "tests")!r})
from helpers import block_imports
block_imports("tensorflow", "keras", "jax")
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(sys.argv[0]))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def documented_commands():
    """``(where, env, script, args)`` of every benchmark command in `DOCUMENTS`; ``where`` is
    ``document:line``. Shell continuations are joined; a trailing ``# comment`` is dropped."""
    commands = []
    for document in DOCUMENTS:
        text = (REPOSITORY / document).read_text(encoding="utf-8")
        lines = text.split("\n")
        following = 0  # index of the first line not yet read (continuations are read with their command)
        for number, line in enumerate(lines, start=1):
            if number <= following:
                continue
            following = number
            while line.endswith("\\") and following < len(lines):  # a command continued on the next lines
                line = line[:-1] + " " + lines[following].strip()
                following += 1
            for match in COMMAND.finditer(line):
                arguments = re.split(r"\s#", match.group(3), maxsplit=1)[0]
                env = dict(item.split("=", 1) for item in match.group(1).split())
                args = [PLACEHOLDERS.get(arg, arg) for arg in shlex.split(arguments)]
                args = [re.sub(r"checkout=([^\s,+]+)", lambda m: "checkout=" + PLACEHOLDERS.get(m.group(1), m.group(1)), arg)
                        for arg in args]
                commands.append((f"{document}:{number}", env, match.group(2), args))
    return commands


COMMANDS = documented_commands()


def dry_run(script, args, env=None):
    """``script ARGS --dry-run`` in a child process (see `RUNNER`): the completed process."""
    path = str(REPOSITORY / script)
    if script.endswith(".sh"):
        command = ["bash", path, *args, "--dry-run"]
    else:
        command = [sys.executable, "-c", RUNNER, path, *args, "--dry-run"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPOSITORY,
                          env={**os.environ, "PYTHONPATH": str(REPOSITORY), **(env or {})})


def test_every_document_prints_benchmark_commands():
    found = {where.split(":")[0] for where, *_ in COMMANDS}
    assert found == set(DOCUMENTS)
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("where, env, script, args", COMMANDS, ids=[command[0] for command in COMMANDS])
def test_documented_command_passes_its_dry_run(where, env, script, args):
    result = dry_run(script, args, env)
    assert result.returncode == 0, f"{where}: {script} {shlex.join(args)}\n{result.stderr[-2000:]}"
    assert f"dry run of {pathlib.Path(script).name}" in result.stdout


@pytest.mark.parametrize("script", sorted(path.name for path in BENCHMARKS.glob("*.*")
                                          if path.suffix in (".py", ".sh") and path.name != "common.py"))
def test_every_benchmark_has_a_dry_run(script):
    args = ["/tmp/unused-out"] if script == "gpu_check.py" else []  # its output folder (not created)
    result = dry_run(f"benchmarks/{script}", args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"dry run of {script}" in result.stdout
    assert not pathlib.Path("/tmp/unused-out").exists()


@pytest.mark.parametrize("script, args, culprit", [
    ("train_step.py", ["--variants", "concat,concat+keras-bn"], "keras-bn"),
    ("train_step.py", ["--compare", "tensorflow,jaxx"], "jaxx"),
    ("train_step.py", ["--compare", "checkout=/nonexistent/checkout"], "/nonexistent/checkout"),
    ("train_step.py", ["--image-size", "100"], "multiple of 32"),
    ("kernel_ablation.py", ["--variants", "before,fast"], "fast"),
    ("ablation.py", ["--variants", "gan,gan+xx"], "gan+xx"),
    ("inference.py", ["--backend", "torch"], "torch"),
    ("metrics_memory.py", ["--checkout", "/nonexistent/checkout"], "/nonexistent/checkout"),
    ("gpu_check.sh", ["--tyni"], "--tyni"),
])
def test_a_bad_argument_fails_the_dry_run_naming_it(script, args, culprit):
    result = dry_run(f"benchmarks/{script}", args)
    assert result.returncode != 0 and "dry run of" not in result.stdout
    assert culprit in result.stderr
