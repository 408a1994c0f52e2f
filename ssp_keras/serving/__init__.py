"""Serving SSP-Net: SavedModel export for TensorFlow Serving, and a gRPC/REST client.

* `export_saved_model` writes ``<base>/<name>/<version>/`` atomically with the signatures
  ``serving_default`` (uint8), ``enhance_float`` (float32) and ``enhance_png`` (encoded bytes).
* `PredictionClient` / `predict_files` talk to ``tensorflow_model_server`` (or the in-process
  stand-in of `ssp_keras.serving.testing`) over gRPC or REST.
"""

from ssp_keras.serving.export import (
    DEFAULT_MODEL_NAME,
    SIGNATURE_FLOAT,
    SIGNATURE_PNG,
    SIGNATURE_UINT8,
    ExportResult,
    export_saved_model,
    next_version,
)

__all__ = [
    "DEFAULT_MODEL_NAME",
    "SIGNATURE_FLOAT",
    "SIGNATURE_PNG",
    "SIGNATURE_UINT8",
    "ExportResult",
    "PredictionClient",
    "export_saved_model",
    "next_version",
    "predict_files",
]


def __getattr__(name):
    # The client pulls in grpc and the serving protos: load it only when asked for.
    if name in ("PredictionClient", "predict_files"):
        from ssp_keras.serving import client

        return getattr(client, name)
    raise AttributeError(f"module 'ssp_keras.serving' has no attribute {name!r}")
