"""Multi-worker training: two `ssp-net train --strategy multiworker` processes on 127.0.0.1.

The workers find each other through TF_CONFIG (free ephemeral ports, CPU only), train the lite
preset for a few steps, and finish. Only the chief writes the run (checkpoints, generator); the
other worker writes to a temporary folder that is gone at the end, and its own --out stays
untouched. Each worker reads its own half of the images.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from ssp_keras.data.synthetic import generate_dataset
from ssp_keras.inference.loading import load_generator

WORKER_TIMEOUT_S = 180
EPOCHS, STEPS = 2, 2
IMAGES = 4


def _free_ports(count):
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.slow
def test_two_workers_train_and_only_the_chief_keeps_the_run(tmp_path):
    data = tmp_path / "data"
    generate_dataset(str(data), count=IMAGES, size=80, seed=0, test_count=1)
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes, outputs = [], []
    try:
        for index in range(2):
            temporary = tmp_path / f"tmp{index}"
            temporary.mkdir()
            env = {
                **os.environ,
                "TF_CPP_MIN_LOG_LEVEL": "3",
                "CUDA_VISIBLE_DEVICES": "",
                "TMPDIR": str(temporary),
                "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}),
            }
            log = open(tmp_path / f"worker{index}.log", "w+")
            outputs.append(log)
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "ssp_keras.cli.main", "train", "--data", str(data), "--preset", "lite",
                 "--image-size", "64", "--iu-patch-sizes", "16", "32", "--batch-size", "1", "--epochs", str(EPOCHS), "--steps-per-epoch", str(STEPS),
                 "--strategy", "multiworker", "--verbose-fit", "0", "--out", str(tmp_path / f"run{index}")],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            ))
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.poll() is None:  # a worker hung (e.g. its peer died): end it, then report
                process.kill()
                process.wait()
    texts = []
    for log in outputs:
        log.seek(0)
        texts.append(log.read())
        log.close()
    for index, (process, text) in enumerate(zip(processes, texts)):
        assert process.returncode == 0, f"worker {index} exited with {process.returncode}:\n{text[-4000:]}"

    # Each worker reads its own shard of the files.
    half = IMAGES // 2
    assert f"Worker 1 of 2 (chief): input shard 1 of 2, {half} of {IMAGES} LQ and {half} of {IMAGES} HQ" in texts[0]
    assert f"Worker 2 of 2: input shard 2 of 2, {half} of {IMAGES} LQ and {half} of {IMAGES} HQ" in texts[1]

    # The chief wrote the run; the other worker wrote to a temporary folder under its TMPDIR, now gone.
    chief_run, other_run = tmp_path / "run0", tmp_path / "run1"
    temporary = re.search(r"writes to the temporary folder (\S+) \(deleted", texts[1]).group(1)
    assert temporary.startswith(str(tmp_path / "tmp1")) and not os.path.exists(temporary)
    assert not other_run.exists()
    assert sorted(os.listdir(chief_run / "checkpoints")) == [f"state-epoch{e:04d}.npz" for e in range(1, EPOCHS + 1)]
    saved = json.loads((chief_run / "config.json").read_text())
    # (CollectiveAllReduceStrategy is the class behind tf.distribute.MultiWorkerMirroredStrategy.)
    assert saved["resolved"] == {"replicas": 2, "global_batch": 2, "steps_per_epoch": STEPS,
                                 "strategy": "CollectiveAllReduceStrategy"}
    with np.load(chief_run / "checkpoints" / f"state-epoch{EPOCHS:04d}.npz") as state:
        assert int(state["__epoch__"]) == EPOCHS
        assert int(state["generator_optimizer/00000"]) == EPOCHS * STEPS  # iterations

    # The chief's result loads and enhances.
    generator = load_generator(str(chief_run / "generator.keras"))
    out = keras.ops.convert_to_numpy(generator(np.full((1, 64, 96, 1), 0.5, "float32")))
    assert out.shape == (1, 64, 96, 1) and np.isfinite(out).all()
