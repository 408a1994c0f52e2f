"""keras-hub-style checks that every model class of the library passes (not a test module).

keras-hub's ``TestCase`` runs the same three checks over every model: its config round trip
(``run_serialization_test``), a ``.keras`` save and load with equal outputs
(``run_model_saving_test``) and a forward pass under another dtype policy (``run_precision_test``).
These are the same checks for ssp-keras' classes; `run_model_checks` runs all three, and
tests/test_model_classes.py runs it for SSPGenerator, PatchDiscriminator, CSNet and SSPNet.

``init_kwargs`` is a dict of constructor arguments, or a function returning one (for models built
from other models, such as SSPNet: each check needs fresh ones, built under its dtype policy).
"""

import json

import keras
import numpy as np


def _arguments(init_kwargs) -> dict:
    return dict(init_kwargs() if callable(init_kwargs) else init_kwargs)


def _numpy(outputs):
    return [keras.ops.convert_to_numpy(output) for output in keras.tree.flatten(outputs)]


def run_serialization_test(cls, init_kwargs):
    """``cls.from_config(model.get_config())`` has an equal config, also through Keras' own
    serialisation (what a ``.keras`` file holds), and the config is plain JSON."""
    model = cls(**_arguments(init_kwargs))
    config = model.get_config()
    json.dumps(keras.saving.serialize_keras_object(model))  # only JSON types
    restored = cls.from_config(config)
    assert type(restored) is cls
    assert restored.get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert type(revived) is cls
    assert revived.get_config() == config


def run_model_saving_test(cls, init_kwargs, input_data, path, prepare=None, atol=1e-6):
    """Saved as ``path`` (a ``.keras`` file) and loaded back: same class, config and outputs.

    ``prepare(model)``: called before saving, e.g. to give the weights random values (an untrained
    model can be the identity, which would make equal outputs vacuous).
    """
    model = cls(**_arguments(init_kwargs))
    if prepare is not None:
        prepare(model)
    expected = _numpy(model(input_data))
    model.save(str(path))
    loaded = keras.saving.load_model(str(path), compile=False)
    assert type(loaded) is cls
    assert loaded.get_config() == model.get_config()
    for got, want in zip(_numpy(loaded(input_data)), expected, strict=True):
        np.testing.assert_allclose(got, want, atol=atol)


def run_precision_test(cls, init_kwargs, input_data, policy="mixed_bfloat16", float32_outputs=True):
    """A forward pass of a model built under ``policy`` (mixed_bfloat16: CPU's mixed precision).

    The variables stay float32, the layers compute in the policy's dtype, and the outputs are
    finite and, where the class promises it (``float32_outputs``), float32. The global policy is
    restored afterwards, whatever happens.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = cls(**_arguments(init_kwargs))
        outputs = keras.tree.flatten(model(input_data))
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.config.dtype_policy().name == previous.name
    compute = keras.mixed_precision.Policy(policy).compute_dtype
    assert {variable.dtype for variable in model.trainable_variables} == {"float32"}
    assert any(layer.compute_dtype == compute for layer in model._flatten_layers(include_self=False))
    for output in outputs:
        if float32_outputs:
            assert keras.backend.standardize_dtype(output.dtype) == "float32", output.dtype
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(keras.ops.cast(output, "float32"))))


def run_model_checks(cls, init_kwargs, input_data, tmp_path, prepare=None, float32_outputs=True):
    """All three checks (see the module docstring)."""
    run_serialization_test(cls, init_kwargs)
    run_model_saving_test(cls, init_kwargs, input_data, tmp_path / f"{cls.__name__}.keras", prepare=prepare)
    run_precision_test(cls, init_kwargs, input_data, float32_outputs=float32_outputs)
