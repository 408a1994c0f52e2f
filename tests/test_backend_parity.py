"""The same SSP-Net on TensorFlow and on JAX.

The Keras backend is fixed per process: this process is TensorFlow's (tests/conftest.py), and
tests/backend_side.py computes the JAX side in a subprocess, with TensorFlow blocked from loading
there (a JAX-only machine). From the same weights and batch: G's and D's outputs, every loss term,
the gradients of one training step and the weights after it (tests/backend_side.py says which
architectures and loss cases), within float32 tolerance. Also: the model code loads without
TensorFlow, and the bundled model gives today's output on both backends.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import backend_side

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HERE)
# XLA's CPU back end at optimisation level 0 compiles these tiny steps about twice as fast; the
# results are the same to float32 rounding (measured: 5e-6 at most).
JAX_ENV = {**os.environ, "KERAS_BACKEND": "jax", "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_backend_optimization_level=0", "TF_CPP_MIN_LOG_LEVEL": "3"}
#: The model code, which must load and run without TensorFlow (the GPU machines have JAX only).
MODEL_MODULES = (
    "ssp_keras.networks", "ssp_keras.networks.layers", "ssp_keras.losses", "ssp_keras.training.model",
    "ssp_keras.training.jax_step", "ssp_keras.training.history_pool", "ssp_keras.training.schedule",
    "ssp_keras.training.optimizers", "ssp_keras.inference", "ssp_keras.inference.loading", "ssp_keras.data.io",
    "ssp_keras.precision",
)


def _jax(script, *args, timeout=900):
    """``python SCRIPT ARGS`` on the JAX backend; its CompletedProcess."""
    return subprocess.run([sys.executable, *script, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=JAX_ENV, cwd=REPOSITORY)


def _without_tensorflow(code, timeout=300):
    """Runs ``code`` on the JAX backend with TensorFlow blocked from loading (a JAX-only machine)."""
    prelude = (f"import sys; sys.path.insert(0, {HERE!r}); from helpers import block_imports; "
               "block_imports('tensorflow'); ")
    return _jax(["-c", prelude + code], timeout=timeout)


def test_the_model_code_loads_without_tensorflow():
    result = _without_tensorflow(
        "import importlib, keras; "
        f"[importlib.import_module(name) for name in {MODEL_MODULES!r}]; "
        "from ssp_keras.training.model import SSPNet; from ssp_keras.training.jax_step import JaxTrainStep; "
        "assert issubclass(SSPNet, JaxTrainStep) and keras.backend.backend() == 'jax'; "
        "assert 'tensorflow' not in sys.modules; print('ok')")
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


@pytest.mark.slow
def test_the_bundled_model_gives_todays_output_on_both_backends(tmp_path):
    """tests/data/ccmid_lite_reference.npz: ccmid-lite's output on a crop of a held-out frame,
    recorded on TensorFlow when the model shipped (the models before its full-resolution skip
    were recorded with the code before the backend port, TensorFlow only, and matched it too)."""
    import ssp_keras

    reference = np.load(os.path.join(HERE, "data", "ccmid_lite_reference.npz"))
    tensorflow = np.asarray(ssp_keras.load_pretrained("ccmid-lite")(reference["image"][None], training=False))[0]
    result = _without_tensorflow(
        "import numpy as np, keras, ssp_keras; "
        f"reference = np.load({os.path.join(HERE, 'data', 'ccmid_lite_reference.npz')!r}); "
        "generator = ssp_keras.load_pretrained('ccmid-lite'); "
        "output = keras.ops.convert_to_numpy(generator(reference['image'][None], training=False))[0]; "
        f"np.save({str(tmp_path / 'jax.npy')!r}, output)")
    assert result.returncode == 0, result.stderr[-3000:]
    jax = np.load(tmp_path / "jax.npy")
    print(f"\nccmid-lite vs the recorded output: TensorFlow {np.abs(tensorflow - reference['enhanced']).max():.1e}, "
          f"JAX {np.abs(jax - reference['enhanced']).max():.1e} (max abs, images in [0, 1])")
    np.testing.assert_allclose(tensorflow, reference["enhanced"], atol=1e-6)
    np.testing.assert_allclose(jax, reference["enhanced"], atol=1e-5)
    assert np.abs(reference["enhanced"] - reference["image"]).mean() > 0.01  # the model does change the crop (0.046; stage 9: 0.048; stage 8: 0.043; stage 7: 0.046; stage 6: 0.051; before the shading-consistency term: 0.018)


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    """(TensorFlow results, JAX results) of tests/backend_side.py for the same inputs."""
    folder = tmp_path_factory.mktemp("parity")
    inputs = backend_side.initial_inputs()
    np.savez(folder / "inputs.npz", **inputs)
    result = _jax([os.path.join(HERE, "backend_side.py")], folder / "inputs.npz", folder / "jax.npz")
    assert result.returncode == 0, result.stderr[-4000:]
    with np.load(folder / "jax.npz") as saved:
        jax = {name: saved[name] for name in saved.files}
    tensorflow = backend_side.compute(inputs)
    assert str(tensorflow["backend"]) == "tensorflow" and str(jax["backend"]) == "jax"
    assert set(tensorflow) == set(jax)
    tensorflow["inputs"] = np.concatenate([inputs["lq"], inputs["hq"]])
    return tensorflow, jax


def _pairs(sides, part):
    tensorflow, jax = sides
    return [(name, tensorflow[name], jax[name]) for name in sorted(jax) if f"/{part}/" in name]


def _report(title, differences):
    """Prints the largest absolute difference per group (``pytest -s`` shows it)."""
    print(f"\n{title}")
    for group, value in sorted(differences.items()):
        print(f"  {group}: {value:.2e}")


@pytest.mark.slow
def test_generator_and_discriminator_outputs_agree(sides):
    differences = {}
    for name, tensorflow, jax in _pairs(sides, "outputs"):
        differences[name] = float(np.abs(tensorflow - jax).max())
        # Images in [0, 1]: 2e-5 is 1/200 of a grey level; logits relative to their scale.
        assert differences[name] <= 2e-5 * max(float(np.abs(tensorflow).max()), 1.0), name
    _report("outputs: max |TF - JAX|", differences)
    # The randomised G does change the images, so agreeing means something.
    assert np.abs(sides[0]["instance/outputs/generator_inference"] - sides[0]["inputs"]).max() > 0.05


@pytest.mark.slow
def test_every_loss_term_agrees(sides):
    differences = {}
    for name, tensorflow, jax in _pairs(sides, "terms") + _pairs(sides, "logs"):
        np.testing.assert_allclose(jax, tensorflow, rtol=1e-4, atol=1e-6, err_msg=name)
        group = name.split("/")[-1]
        differences[group] = max(differences.get(group, 0.0), float(np.abs(tensorflow - jax).max()))
    names = {name.split("/")[-1] for name, _, _ in _pairs(sides, "terms")}
    assert names == {"d_loss", "g_loss", "adv_loss", "iu_loss", "te_loss", "sp_loss", "identity_loss", "shading_loss",
                     "restoration_loss", "synthetic_loss", "texture_loss"}
    assert float(sides[0]["instance/gan+sp+shading/terms/shading_loss"].min()) > 0.01  # compared on shaded inputs
    assert float(sides[0]["instance/gan+sp+degradation/logs/restoration_loss"]) > 1e-3  # G(x~) != T(x) there
    assert float(sides[0]["instance/gan+sp+synthetic/logs/synthetic_loss"]) > 1e-3  # G(s~) != s there
    assert float(sides[0]["instance/gan+sp+synthetic/logs/texture_loss"]) > 1e-3  # G(x)'s band != x's there
    _report("loss terms (per sample, every case) and the step's logged means: max |TF - JAX|", differences)


@pytest.mark.slow
def test_the_gradients_of_one_training_step_agree(sides):
    """Every gradient of the step (D's on L_D, then G's on L_G), per loss case: equal up to float
    round-off relative to the variable's largest gradient; no kernel's gradient is all zero."""
    differences, kernels = {}, 0
    for name, tensorflow, jax in _pairs(sides, "gradient"):
        scale = float(np.abs(tensorflow).max())
        np.testing.assert_allclose(jax, tensorflow, rtol=1e-3, atol=1e-3 * scale + 1e-9, err_msg=name)
        if tensorflow.ndim == 4:
            assert scale > 0, name
            kernels += 1
        case = name.split("/gradient/")[0]
        differences[case] = max(differences.get(case, 0.0), float(np.abs(tensorflow - jax).max()) / max(scale, 1e-30))
    assert kernels > 20
    _report("gradients: max |TF - JAX| / the variable's largest |gradient|", differences)


@pytest.mark.slow
def test_batch_norm_statistics_after_a_step_agree(sides):
    pairs = _pairs(sides, "statistics") + _pairs(sides, "adam_statistics")
    assert any(name.startswith("batch/") for name, _, _ in pairs)
    for name, tensorflow, jax in pairs:
        np.testing.assert_allclose(jax, tensorflow, rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.slow
def test_noise_in_the_generator_input_has_the_same_statistics(sides):
    """``denoising_noise`` and the degradation's Poisson-Gaussian noise draw from each backend's own
    generator: the same strength of change, images kept in [0, 1], and a step with it trains."""
    tensorflow, jax = sides
    changes = [float(side["instance/noise/mean_change"]) for side in sides]
    print(f"\nnoise in G's input: mean |x~ - x| TensorFlow {changes[0]:.4f}, JAX {changes[1]:.4f}")
    assert 0.01 < changes[0] < 0.2 and changes[1] == pytest.approx(changes[0], rel=0.15)
    for side in sides:
        low, high = side["instance/noise/range"]
        assert 0.0 <= low and high <= 1.0
        assert np.isfinite(side["instance/noise/step_losses"]).all()


@pytest.mark.slow
def test_one_training_step_moves_the_weights_the_same(sides):
    """One step with the project's optimisers (FusedAdam on TensorFlow, Keras' Adam on JAX). Adam's
    first step moves an element by about lr * sign(gradient), so an element whose gradient is
    round-off (under 1e-4 of its variable's largest) may move either way; every other element
    moves the same on both backends, to 1% of the step. The history pool holds the same fakes."""
    tensorflow, _ = sides
    learning_rate = backend_side._config("instance").train.lr_warmup_start
    undecided = total = 0
    for name, step_tf, step_jax in _pairs(sides, "adam_step"):
        gradient = tensorflow[name.replace("/adam_step/", "/gradient/")]
        decided = np.abs(gradient) > 1e-4 * np.abs(gradient).max()
        undecided += int((~decided).sum())
        total += gradient.size
        assert np.abs(step_tf).max() > 0.5 * learning_rate, name  # it did move
        np.testing.assert_allclose(step_jax[decided], step_tf[decided], rtol=0, atol=0.01 * learning_rate, err_msg=name)
    assert total and undecided < 0.05 * total, (undecided, total)
    pool = _pairs(sides, "adam_pool")
    assert len(pool) == 2  # images and count
    for name, tensorflow_pool, jax_pool in pool:
        np.testing.assert_allclose(jax_pool, tensorflow_pool, atol=2e-5, err_msg=name)  # images in [0, 1]
    print(f"\nweights after one Adam step: all but {undecided} of {total} elements (gradient under 1e-4 of its "
          f"variable's largest) moved the same to within 1% of the step")


@pytest.mark.slow
def test_a_generator_trained_on_jax_enhances_the_same_on_tensorflow_and_serves(tmp_path, monkeypatch):
    """``ssp-net train --backend jax`` (a subprocess, TensorFlow only for its tf.data input), then
    the saved generator.keras enhances a held-out image (tiled) the same on JAX and on TensorFlow,
    to within 1 grey level, and exports the TensorFlow Serving SavedModel, whose serving_default
    gives TensorFlow's enhancement to within 1 grey level."""
    import tensorflow as tf

    from helpers import run_cli
    from ssp_keras.data.io import read_image
    from ssp_keras.data.synthetic import generate_dataset
    from ssp_keras.inference import enhance_array, load_generator
    from ssp_keras.networks import build_generator
    from tiny import randomised, tiny_config

    data, run = tmp_path / "data", tmp_path / "run"
    generate_dataset(str(data), count=4, size=80, seed=0, test_count=1)
    config = tiny_config(**{"train.image_grid_size": 1})
    config.to_json(str(tmp_path / "tiny.json"))
    # Fine-tuned from random weights: untrained, G would be (nearly) the identity, which both
    # backends reproduce trivially.
    randomised(build_generator(config), seed=2, scale=0.2).save(str(tmp_path / "random.keras"))
    cli = ["-m", "ssp_keras.cli.main"]
    trained = _jax(cli, "train", "--backend", "jax", "--data", data, "--config", tmp_path / "tiny.json",
                   "--init-from", tmp_path / "random.keras", "--epochs", 1, "--steps-per-epoch", 2, "--out", run)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert json.loads((run / "config.json").read_text())["train"]["backend"] == "jax"
    # The callbacks ran on JAX: checkpoint, history, preview, TensorBoard scalars and image grid.
    assert os.listdir(run / "checkpoints") == ["state-epoch0001.npz"] and (run / "history.csv").is_file()
    assert os.listdir(run / "previews") == ["epoch0001.png"]
    assert any(name.startswith("events") for name in os.listdir(run / "logs" / "train"))
    assert any(name.startswith("events") for name in os.listdir(run / "logs" / "images"))

    image = data / "testA" / "test_0000.png"  # 80 x 80: padded to 96, and tiled below
    tiles = ["--tile-size", "64", "--overlap", "16", "--precision", "float32"]
    enhanced = _jax(cli, "enhance", "--backend", "jax", "--model", run, image, "--out", tmp_path / "jax", *tiles)
    assert enhanced.returncode == 0, enhanced.stderr[-3000:]
    assert run_cli(monkeypatch, ["enhance", "--model", str(run), str(image), "--out", str(tmp_path / "tf"), *tiles]) == 0
    on_jax, on_tensorflow = (read_image(str(tmp_path / side / "test_0000.png"), 1) for side in ("jax", "tf"))
    original = read_image(str(image), 1)
    assert np.abs(on_tensorflow - original).mean() > 5 / 255  # trained on JAX, G does change the image
    assert np.abs(on_jax - on_tensorflow).max() <= 1.001 / 255

    assert run_cli(monkeypatch, ["export", "--model", str(run), "--base", str(tmp_path / "serving"),
                                 "--name", "ssp_net"]) == 0
    serving = tf.saved_model.load(str(tmp_path / "serving" / "ssp_net" / "1")).signatures["serving_default"]
    served = serving(images=tf.constant(np.uint8(np.round(original * 255))[None]))["enhanced"].numpy()[0]
    local = enhance_array(load_generator(str(run)), original, tile_size=0)
    assert np.abs(served.astype(np.float32) / 255 - local).max() <= 1.001 / 255
