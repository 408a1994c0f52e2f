"""Distribution: strategy selection, one step on 2 replicas == one step on 1 (MirroredStrategy on
TensorFlow, DataParallel on JAX), resume under MirroredStrategy after SIGKILL, XLA and mixed
precision on CPU, and the multi-worker roles.

Splitting the CPU into logical devices must happen before TensorFlow initialises its devices, and
pytest runs every test file in one process, so everything that needs two replicas runs in fresh
subprocesses (tests/two_replicas.py, and the CLI).
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from ssp_keras.cli.main import build_parser
from ssp_keras.cli.options import config_from_args
from ssp_keras.config import TrainConfig
from ssp_keras.data.synthetic import generate_dataset
from ssp_keras.networks.layers import SyncBatchNormalization
from ssp_keras.training import build_sspnet
from ssp_keras.training.distribute import (
    WorkerRole,
    agree_across_workers,
    check_jit_compile,
    configure_cpu_replicas,
    describe_worker,
    is_chief,
    resolve_strategy,
    resolve_sync_batch_norm,
    worker_role,
    worker_role_from_tf_config,
    worker_shard,
    writable_directory,
)
from ssp_keras.training.schedule import schedule_from_config
from helpers import SUBPROCESS_ENV as ENV
from helpers import compiled_sspnet, gradient_recorder, kill_after_checkpoint, read_history
from helpers import random_batch as _batch
from tiny import tiny_config

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------- 1 vs 2 replicas
@pytest.fixture(scope="module")
def two_replicas(tmp_path_factory):
    """Results of tests/two_replicas.py (one fresh process with two CPU replicas)."""
    out = tmp_path_factory.mktemp("two_replicas")
    result = subprocess.run([sys.executable, os.path.join(HERE, "two_replicas.py"), str(out)],
                            capture_output=True, text=True, timeout=400, env=ENV)
    assert result.returncode == 0, result.stderr[-4000:]
    with np.load(out / "results.npz") as saved:
        return {name: saved[name] for name in saved.files}


def _pairs(results, kind):
    prefix = f"one/{kind}/"
    return [(name[len(prefix):], results[name], results[f"two/{kind}/{name[len(prefix):]}"])
            for name in results if name.startswith(prefix)]


@pytest.mark.slow
def test_one_step_on_two_replicas_equals_one_step_on_one(two_replicas):
    assert int(two_replicas["one/replicas"]) == 1 and int(two_replicas["two/replicas"]) == 2
    losses = _pairs(two_replicas, "loss")
    assert {name for name, _, _ in losses} >= {"d_loss", "g_loss", "adv_loss", "iu_loss", "te_loss"}
    for name, one, two in losses:
        assert float(two) == pytest.approx(float(one), rel=1e-5, abs=1e-6), name
    weights = _pairs(two_replicas, "weight")
    assert any("moving_variance" in name for name, _, _ in weights)  # batch-norm statistics compared too
    for name, one, two in weights:
        np.testing.assert_allclose(two, one, rtol=0, atol=1e-5, err_msg=name)
    # Adam's first step moves each weight by about lr whatever the gradient's scale; its moments
    # hold the gradients themselves (m = (1 - beta1) g, v = (1 - beta2) g^2), so a wrongly scaled
    # or per-replica gradient shows here.
    optimizer = _pairs(two_replicas, "optimizer")
    assert sum("momentum" in name for name, _, _ in optimizer) == sum("velocity" in name for name, _, _ in optimizer) > 0
    for name, one, two in optimizer:
        scale = max(float(np.abs(one).max()), 1e-30)
        assert float(np.abs(two - one).max()) <= 1e-3 * scale, name


@pytest.mark.slow
def test_auto_strategy_mirrors_over_cpu_replicas_and_restores_every_replica(two_replicas):
    assert str(two_replicas["auto/type"]) == "MirroredStrategy" and int(two_replicas["auto/replicas"]) == 2
    assert "jit_compile (XLA) needs a single replica, but this run has 2" in str(two_replicas["jit_error"])
    assert int(two_replicas["restored/epoch"]) == 1
    saved = [name[len("saved/"):] for name in two_replicas if name.startswith("saved/")]
    assert any(name.startswith("generator_optimizer/") for name in saved)
    for name in saved:
        for replica in (0, 1):
            np.testing.assert_array_equal(two_replicas[f"restored/{replica}/{name}"], two_replicas[f"saved/{name}"],
                                          err_msg=f"replica {replica}: {name}")


# ----------------------------------------------------------------------------- JAX: DataParallel over 2 devices
@pytest.mark.slow
def test_jax_data_parallel_step_on_two_devices_equals_the_step_on_one(tmp_path):
    """tests/jax_data_parallel.py: on JAX (TensorFlow blocked), ``keras.distribution.DataParallel``
    over two CPU devices, as the trainer resolves ``--strategy mirrored --cpu-replicas 2``, gives the
    one-device step on the same global batch: losses, every gradient, batch-norm statistics."""
    env = {**ENV, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_backend_optimization_level=0"}
    result = subprocess.run([sys.executable, os.path.join(HERE, "jax_data_parallel.py"), str(tmp_path)],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    with np.load(tmp_path / "results.npz") as saved:
        results = {name: saved[name] for name in saved.files}
    assert int(results["two/replicas"]) == 2 and str(results["two/strategy"]) == "DataParallel"
    assert int(results["two/weight_devices"]) == 2 and int(results["one/weight_devices"]) == 1
    assert "spec=P('batch',)" in str(results["two/batch_sharding"])  # each device gets half the batch
    losses = _pairs(results, "loss")
    assert {name for name, _, _ in losses} >= {"d_loss", "g_loss", "adv_loss", "iu_loss", "te_loss"}
    for name, one, two in losses:
        assert float(two) == pytest.approx(float(one), rel=1e-5, abs=1e-6), name
    statistics = _pairs(results, "statistics")
    assert statistics  # batch norm: the statistics must be the global batch's
    for name, one, two in statistics:
        np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6, err_msg=name)
    gradients = _pairs(results, "gradient")
    assert len(gradients) > 20
    for name, one, two in gradients:
        scale = float(np.abs(one).max())
        np.testing.assert_allclose(two, one, rtol=1e-3, atol=1e-3 * scale + 1e-9, err_msg=name)


# ----------------------------------------------------------------------------- resume under mirrored
@pytest.mark.slow
def test_resume_after_sigkill_under_mirrored(tmp_path):
    data = tmp_path / "data"
    generate_dataset(str(data), count=8, size=80, seed=0, test_count=1)
    config_file = tmp_path / "tiny.json"
    schedule = {"train.lr_warmup_steps": 3, "train.lr_halving_epochs": 1, "train.image_grid_size": 2}
    tiny_config(**schedule).to_json(str(config_file))
    run_dir = tmp_path / "run"
    # Per-replica batch 2 on 2 replicas: global batch 4, so 8 images make 2 steps per epoch.
    command = [sys.executable, "-m", "ssp_keras.cli.main", "train", "--data", str(data), "--config", str(config_file),
               "--strategy", "mirrored", "--cpu-replicas", "2", "--verbose-fit", "0", "--out", str(run_dir)]
    kill_after_checkpoint(command + ["--epochs", "1000"], run_dir / "checkpoints" / "state-epoch0001.npz",
                          timeout_s=300, env=ENV)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["resolved"] == {"replicas": 2, "global_batch": 4, "steps_per_epoch": 2, "strategy": "MirroredStrategy"}
    killed_at = max(int(name[11:15]) for name in os.listdir(run_dir / "checkpoints") if name.startswith("state-epoch"))

    result = subprocess.run(command + ["--epochs", str(killed_at + 1)], capture_output=True, text=True, timeout=300,
                            env=ENV)
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"Resuming from the checkpoint of epoch {killed_at}" in result.stdout
    rows = read_history(run_dir)
    assert int(rows[-1]["epoch"]) == killed_at
    with np.load(run_dir / "checkpoints" / f"state-epoch{killed_at + 1:04d}.npz") as final:
        assert int(final["__epoch__"]) == killed_at + 1
        assert int(final["generator_optimizer/00000"]) == (killed_at + 1) * 2  # iterations went on
    # The schedule counts optimiser iterations: 2 per epoch at this global batch.
    expected_lr = float(schedule_from_config(tiny_config(**schedule).train, 2)((killed_at + 1) * 2))
    assert float(rows[-1]["generator_lr"]) == pytest.approx(expected_lr, rel=1e-5)


# ----------------------------------------------------------------------------- XLA, mixed precision
def _compiled(config, jit_compile=False, initial=None):
    model = compiled_sspnet(config, jit_compile=jit_compile)
    if initial is not None:
        for variable, value in zip(model.generator.weights + model.discriminator.weights, initial):
            variable.assign(value)
    return model


@pytest.fixture
def dtype_policy():
    previous = keras.config.dtype_policy()
    yield keras.config.set_dtype_policy
    keras.config.set_dtype_policy(previous)


def _recording(config, initial, jit_compile=False):
    keras.utils.set_random_seed(0)
    model = build_sspnet(config)
    model.compile(gradient_recorder("g"), gradient_recorder("d"), jit_compile=jit_compile)
    for variable, value in zip(model.generator.weights + model.discriminator.weights, initial):
        variable.assign(value)
    return model


@pytest.mark.slow
def test_xla_train_step_matches_the_graph_step():
    # With the history pool on: its boolean_mask / scatter compile too. The pool holds the 4
    # fakes of the first step, so that step shows D exactly these (no random draw).
    config = tiny_config(**{"loss.structure_noise": 0.0, "loss.history_pool_size": 4})
    keras.utils.set_random_seed(0)
    fresh = build_sspnet(config)
    rng = np.random.default_rng(0)
    # G starts as the identity (its output convolution is zero), which would stop every gradient
    # but the last layers'; small random values there let the gradients reach all of G.
    values = [keras.ops.convert_to_numpy(v) for v in fresh.generator.weights + fresh.discriminator.weights]
    initial = [value if value.any() or value.ndim < 4 else rng.normal(0, 0.05, value.shape).astype(value.dtype)
               for value in values]
    graph = _recording(config, initial)
    xla = _recording(config, initial, jit_compile=True)
    assert xla.jit_compile
    lq, hq = _batch()
    graph_logs = graph.train_on_batch(lq, hq, return_dict=True)
    xla_logs = xla.train_on_batch(lq, hq, return_dict=True)
    for name, value in graph_logs.items():
        assert xla_logs[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name
    # Every gradient of the step, XLA against graph: equal up to float round-off (observed: 1.2e-4
    # of the variable's largest gradient); no kernel gradient is all zero, so all of G and D count.
    gradients = lambda model: model.generator_optimizer.gradients + model.discriminator_optimizer.gradients  # noqa: E731
    assert len(gradients(graph)) == len(graph.generator.trainable_weights) + len(graph.discriminator.trainable_weights)
    kernels = 0
    for a, b in zip(gradients(graph), gradients(xla)):
        expected, actual = keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        scale = float(np.abs(expected).max())
        if a.path.endswith("kernel_gradient"):
            assert scale > 0, a.path
            kernels += 1
        np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-3 * scale + 1e-9, err_msg=a.path)
    trainable = graph.generator.trainable_weights + graph.discriminator.trainable_weights
    assert kernels == sum(variable.path.endswith("kernel") for variable in trainable)
    for a, b in zip(graph.fake_pool.weights, xla.fake_pool.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(b), keras.ops.convert_to_numpy(a), atol=1e-4, err_msg=a.path)  # images in [0, 1]: 1e-4 is 1/40 of a grey level
    assert int(xla.fake_pool.count) == 4


@pytest.mark.slow
def test_xla_under_mixed_bfloat16(dtype_policy):
    # bfloat16 activations: the upsampling's gradient must stay one dtype for XLA to compile it.
    dtype_policy("mixed_bfloat16")
    model = _compiled(tiny_config(), jit_compile=True)
    for seed in range(2):
        logs = model.train_on_batch(*_batch(seed=seed), return_dict=True)
    for name, value in logs.items():
        assert np.isfinite(value), name


def test_mixed_bfloat16_trains_with_float32_losses(dtype_policy):
    dtype_policy("mixed_bfloat16")
    model = _compiled(tiny_config(**{"loss.history_pool_size": 3}))
    lq, hq = _batch()
    enhanced_lq, enhanced_hq = model._enhance_both(tf.constant(lq), tf.constant(hq), training=False)
    assert enhanced_lq.dtype == tf.float32
    assert model.generator_losses(lq, hq, enhanced_lq, enhanced_hq, training=False)["g_loss"].dtype == tf.float32
    assert model.discriminator_losses(hq, enhanced_lq, enhanced_hq, training=False).dtype == tf.float32
    assert {v.dtype for v in model.generator.trainable_weights} == {"float32"}  # float32 master weights
    before = [keras.ops.convert_to_numpy(v) for v in model.generator.trainable_weights]
    for seed in range(2):
        logs = model.train_on_batch(*_batch(seed=seed), return_dict=True)
    for name, value in logs.items():
        assert np.isfinite(value), name
    assert any(not np.array_equal(a, keras.ops.convert_to_numpy(b)) for a, b in zip(before, model.generator.trainable_weights))
    assert model.fake_pool.images.dtype == "float32" and int(model.fake_pool.count) == 3


def test_mixed_float16_scales_the_losses(dtype_policy, monkeypatch):
    dtype_policy("mixed_float16")
    model = _compiled(tiny_config())
    model.run_eagerly = True  # so the spies below see values
    optimizers = {"g": model.generator_optimizer, "d": model.discriminator_optimizer}
    scaled = {}
    for name, optimizer in optimizers.items():
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        scale_loss = optimizer.scale_loss
        monkeypatch.setattr(optimizer, "scale_loss", lambda loss, name=name, scale_loss=scale_loss: scaled.setdefault(
            name, []).append((float(loss), float(result := scale_loss(loss)))) or result)
    weights = model.generator.trainable_weights + model.discriminator.trainable_weights
    before = [keras.ops.convert_to_numpy(variable) for variable in weights]

    # Each network's loss is multiplied by its optimiser's dynamic scale (2^15 to start), and the
    # gradients are unscaled again: the step is finite and moves the weights.
    logs = model.train_on_batch(*_batch(), return_dict=True)
    for name, value in logs.items():
        assert np.isfinite(value), name
    for name, calls in scaled.items():
        (loss, result), = calls
        assert result == pytest.approx(loss * 2.0**15, rel=1e-6), name
    assert set(scaled) == {"g", "d"}
    changed = [not np.array_equal(a, keras.ops.convert_to_numpy(b)) for a, b in zip(before, weights)]
    generator_count = len(model.generator.trainable_weights)
    assert any(changed[:generator_count]) and any(changed[generator_count:])  # G and D both stepped

    # A scale so large that float16 gradients overflow: the step is skipped and the scale halved.
    moved = [keras.ops.convert_to_numpy(variable) for variable in weights]
    for optimizer in optimizers.values():
        optimizer.dynamic_scale.assign(1e30)
    model.train_on_batch(*_batch(seed=1), return_dict=True)
    for a, b in zip(moved, weights):
        np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(b), err_msg=b.path)
    for name, optimizer in optimizers.items():
        assert float(optimizer.dynamic_scale) == pytest.approx(0.5e30, rel=1e-6), name


# ----------------------------------------------------------------------------- strategy selection
def test_without_gpus_auto_and_none_use_the_default_strategy():
    for kind in ("auto", "none"):
        strategy = resolve_strategy(TrainConfig(strategy=kind))
        assert strategy.num_replicas_in_sync == 1 and not isinstance(strategy, tf.distribute.MirroredStrategy)
        assert is_chief(strategy) and worker_shard(strategy) is None
        assert writable_directory("/some/run", strategy) == "/some/run"
        assert describe_worker(strategy, 4, 4, "/some/run") is None
        agree_across_workers(strategy, 3, "anything")  # a no-op on one worker


def test_xla_is_refused_with_more_than_one_replica_only():
    check_jit_compile(True, 1)
    check_jit_compile(False, 8)
    with pytest.raises(ValueError, match="needs a single replica, but this run has 2"):
        check_jit_compile(True, 2)


def test_sync_batch_norm_is_on_by_default_exactly_with_several_replicas():
    assert resolve_sync_batch_norm(None, 1) is False and resolve_sync_batch_norm(None, 2) is True
    assert resolve_sync_batch_norm(False, 4) is False and resolve_sync_batch_norm(True, 1) is True


def test_sync_batch_norm_on_one_replica_is_plain_batch_norm():
    x = np.random.default_rng(0).normal(3.0, 2.0, (4, 8, 8, 3)).astype(np.float32)
    plain, synced = keras.layers.BatchNormalization(momentum=0.9), SyncBatchNormalization(momentum=0.9)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(synced(x, training=True)),
                                  keras.ops.convert_to_numpy(plain(x, training=True)))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(synced.moving_variance),
                                  keras.ops.convert_to_numpy(plain.moving_variance))
    assert SyncBatchNormalization.from_config(synced.get_config()).synchronized


def test_cpu_split_after_initialisation_is_a_clear_error():
    tf.config.list_logical_devices("CPU")  # initialises the runtime
    configure_cpu_replicas(1)  # nothing to split: fine
    with pytest.raises(RuntimeError, match="already initialised"):
        configure_cpu_replicas(3)


# ----------------------------------------------------------------------------- multi-worker roles
def test_worker_roles_number_the_chief_first():
    workers = {"worker": ["a:1", "b:1", "c:1"]}
    assert worker_role(workers, "worker", 0) == WorkerRole(0, 3, True)
    assert worker_role(workers, "worker", 2) == WorkerRole(2, 3, False)
    with_chief = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    assert worker_role(with_chief, "chief", 0) == WorkerRole(0, 3, True)
    assert worker_role(with_chief, "worker", 0) == WorkerRole(1, 3, False)
    assert worker_role({}, None, None) == WorkerRole(0, 1, True)


@pytest.mark.parametrize("tf_config, message", [
    (None, "needs the TF_CONFIG environment variable"),
    ("{not json", "not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', '"cluster" and "task"'),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "unsupported task type 'ps'"),
    ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}', '"host:port"'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "not in the cluster"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}', "out of range"),
])
def test_bad_tf_config_is_explained(tf_config, message, monkeypatch):
    with pytest.raises(ValueError, match=message):
        worker_role_from_tf_config(tf_config)
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=message):
        resolve_strategy(TrainConfig(strategy="multiworker"))


def test_tf_config_of_the_readme_example():
    example = {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 1}}
    assert worker_role_from_tf_config(json.dumps(example)) == WorkerRole(1, 2, False)


def test_cpu_replicas_do_not_apply_to_multiworker(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}))
    with pytest.raises(ValueError, match="cpu_replicas does not apply"):
        resolve_strategy(TrainConfig(strategy="multiworker", cpu_replicas=2))


# ----------------------------------------------------------------------------- command line
@pytest.mark.parametrize("native", [True, False])
def test_command_line_options_reach_the_config(monkeypatch, native, capsys):
    from ssp_keras import runtime
    from ssp_keras.precision import resolve_training_precision

    monkeypatch.setattr(runtime, "native_bfloat16", lambda flags=None: native)
    args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--strategy", "mirrored",
                                      "--cpu-replicas", "2", "--batch-size", "3", "--mixed-precision", "--jit-compile"])
    train = config_from_args(args).train
    assert (train.strategy, train.cpu_replicas, train.batch_size, train.jit_compile) == ("mirrored", 2, 3, True)
    # No GPU here: the CPU's mixed precision where it is native, never the ~10x slower emulation.
    assert train.precision == ("mixed_bfloat16" if native else "float32")
    assert ("no native bfloat16" in capsys.readouterr().err) is not native
    default = config_from_args(build_parser().parse_args(["train", "--data", "d", "--out", "o"])).train
    assert (default.strategy, default.cpu_replicas, default.precision, default.jit_compile) == ("auto", 0, "auto", False)
    assert resolve_training_precision("auto") == ("mixed_bfloat16" if native else "float32")
    assert resolve_training_precision("mixed_float16") == "mixed_float16"
