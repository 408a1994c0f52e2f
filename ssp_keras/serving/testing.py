"""An in-process stand-in for ``tensorflow_model_server``, for tests and benchmarks only.

TensorFlow Serving's binary cannot be installed on the development machines (SPEC section 7), so
this module serves exported SavedModels with the same wire protocols, to let the real client
(`ssp_keras.serving.client`) be tested end to end over 127.0.0.1:

* gRPC: ``tensorflow.serving.PredictionService`` from ``tensorflow-serving-api`` with ``Predict``
  and ``GetModelMetadata`` (signature defs); status codes as TF Serving sends them (NOT_FOUND for
  an unknown model or version, INVALID_ARGUMENT for a bad signature name, input name, dtype,
  shape or undecodable image).
* REST: ``POST /v1/models/<name>[/versions/<v>]:predict`` with the row (``instances``) and
  columnar (``inputs``) JSON formats, ``{"b64": ...}`` for binary strings (outputs whose name
  ends in ``_bytes`` are base64-encoded, as TF Serving does), ``GET /v1/models/<name>`` (status)
  and ``GET /v1/models/<name>/metadata``; errors as ``{"error": "..."}`` with HTTP 400/404. A
  body longer than ``max_rest_body_bytes`` is refused from its Content-Length header with HTTP
  413, before any of it is read (so is a missing or malformed length with 411/400).

It is not a product: no batching, no version policy beyond "latest unless asked", no model
reloading, no TLS. Use the real server in production (see ``export/README.md``).

Usage::

    with InProcessModelServer({"ssp_net": "exports/ssp_net"}) as server:
        client = PredictionClient(server.grpc_address)           # or server.rest_address, rest=True
"""

from __future__ import annotations

import base64
import http.server
import json
import logging
import os
import re
import threading
from concurrent import futures
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from ssp_keras.serving.client import paused_gc

logger = logging.getLogger(__name__)

#: TF Serving accepts messages up to 2 GiB - 1 (it sets gRPC's limit to INT_MAX).
UNLIMITED_MESSAGE_BYTES = 2**31 - 1
#: Largest REST request body read by default (the client's JSON requests stay below 64 MiB).
DEFAULT_MAX_REST_BODY_BYTES = 256 * 2**20
_HTTP_STATUS = {"NOT_FOUND": 404, "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "UNAVAILABLE": 503}
_REST_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<verb>:predict|/metadata)?$")


class ServingFailure(Exception):
    """An error to send back: ``code`` is a ``grpc.StatusCode`` name (``NOT_FOUND``, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class _Servable:
    """One loaded version: the signature functions and their ``SignatureDef`` protos."""

    def __init__(self, path: str, version: int):
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2

        self.version = version
        self.loaded = tf.saved_model.load(path)
        with open(os.path.join(path, "saved_model.pb"), "rb") as stream:
            saved_model = saved_model_pb2.SavedModel.FromString(stream.read())
        self.signature_defs = {
            key: value
            for key, value in saved_model.meta_graphs[0].signature_def.items()
            if not key.startswith("__")  # __saved_model_init_op is not a serving signature
        }

    def signature_def(self, name: str):
        """The ``SignatureDef`` called ``name`` (default ``serving_default``), or INVALID_ARGUMENT."""
        name = name or "serving_default"
        if name not in self.signature_defs:
            raise ServingFailure("INVALID_ARGUMENT", f'Serving signature name: "{name}" not found in signature def')
        return self.signature_defs[name]


class ModelRegistry:
    """Model names -> loaded versions, from ``{name: base_path}`` (TF Serving's layout).

    Every integer-named version under each base path is loaded at start (TF Serving's default
    policy serves only the latest; keeping all lets tests address older versions); a request
    without a version gets the latest, as in TF Serving.
    """

    def __init__(self, models: Mapping[str, str]):
        from ssp_keras.serving.export import existing_versions

        self.servables: Dict[str, Dict[int, _Servable]] = {}
        for name, base_path in models.items():
            versions = existing_versions(base_path)
            if not versions:
                raise ValueError(f"no integer-named version folder under '{base_path}' for model '{name}'")
            self.servables[name] = {
                version: _Servable(os.path.join(base_path, str(version)), version) for version in versions
            }

    def get(self, name: str, version: Optional[int] = None) -> _Servable:
        versions = self.servables.get(name)
        if not versions:
            raise ServingFailure("NOT_FOUND", f"Servable not found for request: Latest({name})")
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise ServingFailure("NOT_FOUND", f"Servable not found for request: Specific({name}, {version})")
        return versions[version]

    def predict(
        self, name: str, version: Optional[int], signature_name: str, inputs: Mapping[str, np.ndarray]
    ) -> Tuple[_Servable, Dict[str, np.ndarray]]:
        """Runs one signature on numpy inputs; every failure is a `ServingFailure`."""
        import tensorflow as tf

        servable = self.get(name, version)
        signature_name = signature_name or "serving_default"
        signature_def = servable.signature_def(signature_name)
        expected = set(signature_def.inputs)
        if set(inputs) != expected:
            raise ServingFailure(
                "INVALID_ARGUMENT",
                f"input names {sorted(inputs)} do not match the signature's inputs {sorted(expected)}",
            )
        tensors = {}
        for key, array in inputs.items():
            _check_against(key, array, signature_def.inputs[key])
            tensors[key] = tf.constant(array)
        try:
            outputs = servable.loaded.signatures[signature_name](**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            raise ServingFailure("INVALID_ARGUMENT", _first_line(error)) from None
        except tf.errors.OpError as error:
            raise ServingFailure("INTERNAL", _first_line(error)) from None
        return servable, {key: value.numpy() for key, value in outputs.items()}


_TF_NOISE = ("Graph execution error", "Detected at node", "<stack traces unavailable>", "[[", "File ")


def _first_line(error: BaseException) -> str:
    """The cause in a TensorFlow error message, without its graph-location boilerplate."""
    message = getattr(error, "message", None) or str(error)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    causes = [line for line in lines if not line.startswith(_TF_NOISE)]
    return (causes or lines or [type(error).__name__])[-1]


def _check_against(key: str, array: np.ndarray, tensor_info) -> None:
    """INVALID_ARGUMENT unless ``array`` has the dtype and a shape compatible with the signature."""
    import tensorflow as tf

    expected_dtype = tf.dtypes.as_dtype(tensor_info.dtype)
    actual_dtype = tf.dtypes.as_dtype(array.dtype) if array.dtype != object else tf.string
    if actual_dtype != expected_dtype:
        raise ServingFailure(
            "INVALID_ARGUMENT", f"Expects arg '{key}' to be {expected_dtype.name} but {actual_dtype.name} is provided"
        )
    if tensor_info.tensor_shape.unknown_rank:
        return
    dims = [dim.size for dim in tensor_info.tensor_shape.dim]
    if array.ndim != len(dims) or any(want not in (-1, have) for want, have in zip(dims, array.shape)):
        shown = "[" + ", ".join("?" if size == -1 else str(size) for size in dims) + "]"
        raise ServingFailure(
            "INVALID_ARGUMENT", f"input '{key}' has shape {list(array.shape)}, the signature expects {shown}"
        )


def _signature_def_map(servable: _Servable):
    from tensorflow_serving.apis import get_model_metadata_pb2

    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, value in servable.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(value)
    return signature_map


# ------------------------------------------------------------------------------ gRPC
def _make_servicer(registry: ModelRegistry):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

    class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            spec = request.model_spec
            version = spec.version.value if spec.HasField("version") else None
            try:
                try:
                    inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
                except Exception as error:  # a TensorProto whose content does not match its shape
                    raise ServingFailure("INVALID_ARGUMENT", f"malformed input tensor: {_first_line(error)}")
                servable, outputs = registry.predict(spec.name, version, spec.signature_name, inputs)
            except ServingFailure as failure:
                context.abort(getattr(grpc.StatusCode, failure.code), failure.message)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = spec.name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = spec.signature_name or "serving_default"
            wanted = set(request.output_filter) or set(outputs)
            for key in wanted:
                if key not in outputs:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"output tensor alias not found: {key}")
                response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
            return response

        def GetModelMetadata(self, request, context):
            spec = request.model_spec
            if list(request.metadata_field) != ["signature_def"]:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Metadata field signature_def is required")
            try:
                servable = registry.get(spec.name, spec.version.value if spec.HasField("version") else None)
            except ServingFailure as failure:
                context.abort(getattr(grpc.StatusCode, failure.code), failure.message)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = spec.name
            response.model_spec.version.value = servable.version
            response.metadata["signature_def"].Pack(_signature_def_map(servable))
            return response

    return PredictionServicer()


# ------------------------------------------------------------------------------ REST
def _decode_json_value(value):
    """``{"b64": ...}`` objects (at any depth) to bytes; everything else unchanged."""
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (ValueError, TypeError):
                raise ServingFailure("INVALID_ARGUMENT", "invalid base64 in a {\"b64\": ...} value") from None
        raise ServingFailure("INVALID_ARGUMENT", f"unexpected JSON object with keys {sorted(value)}")
    if isinstance(value, list):
        return [_decode_json_value(item) for item in value]
    return value


def _json_to_array(key: str, value, tensor_info) -> np.ndarray:
    """A JSON (nested list) value to a numpy array of the signature's dtype, or INVALID_ARGUMENT."""
    import tensorflow as tf

    dtype = tf.dtypes.as_dtype(tensor_info.dtype)
    try:
        if dtype == tf.string:  # only strings may hold {"b64": ...}: numbers skip the walk
            array = np.array(_decode_json_value(value), dtype=object)
            if not all(isinstance(item, (bytes, str)) for item in array.reshape(-1)):
                raise ValueError("expected strings")
            return np.vectorize(lambda item: item.encode() if isinstance(item, str) else item, otypes=[object])(array)
        raw = np.array(value)
    except ValueError as error:
        raise ServingFailure("INVALID_ARGUMENT", f"input '{key}' is not a rectangular {dtype.name} array: {error}")
    target = dtype.as_numpy_dtype
    if raw.dtype == object or raw.dtype.kind not in "biuf":
        raise ServingFailure("INVALID_ARGUMENT", f"input '{key}' must hold numbers for {dtype.name}")
    if np.issubdtype(target, np.integer):
        info = np.iinfo(target)
        if raw.dtype.kind == "f" or (raw.size and (raw.min() < info.min or raw.max() > info.max)):
            raise ServingFailure(
                "INVALID_ARGUMENT", f"input '{key}' must hold integers in [{info.min}, {info.max}] for {dtype.name}"
            )
    return raw.astype(target)


def _array_to_json(key: str, array: np.ndarray):
    if array.dtype == object:
        encode = (lambda item: {"b64": base64.b64encode(item).decode("ascii")}) if key.endswith("_bytes") else (
            lambda item: item.decode("utf-8", errors="replace")
        )
        return np.vectorize(encode, otypes=[object])(array).tolist() if array.ndim else encode(array.item())
    return array.tolist()


def _rest_predict(registry: ModelRegistry, name: str, version: Optional[int], body: bytes) -> dict:
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ServingFailure("INVALID_ARGUMENT", f"JSON Parse error: {error}") from None
    if not isinstance(request, dict) or ("instances" in request) == ("inputs" in request):
        raise ServingFailure("INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key (exactly one is required)")
    signature_name = request.get("signature_name") or "serving_default"
    signature_def = registry.get(name, version).signature_def(signature_name)
    input_names = sorted(signature_def.inputs)
    row_format = "instances" in request

    if row_format:
        instances = request["instances"]
        if not isinstance(instances, list) or not instances:
            raise ServingFailure("INVALID_ARGUMENT", "'instances' must be a non-empty list")
        named = isinstance(instances[0], dict) and set(instances[0]) != {"b64"}
        if named:
            if not all(isinstance(item, dict) and sorted(item) == input_names for item in instances):
                raise ServingFailure("INVALID_ARGUMENT", f"every instance must name exactly the inputs {input_names}")
            columns = {key: [item[key] for item in instances] for key in input_names}
        elif len(input_names) == 1:
            columns = {input_names[0]: instances}
        else:
            raise ServingFailure("INVALID_ARGUMENT", f"instances must be objects naming the inputs {input_names}")
    else:
        inputs = request["inputs"]
        if isinstance(inputs, dict) and set(inputs) != {"b64"}:
            columns = inputs
        elif len(input_names) == 1:
            columns = {input_names[0]: inputs}
        else:
            raise ServingFailure("INVALID_ARGUMENT", f"'inputs' must be an object naming the inputs {input_names}")
    unknown = sorted(set(columns) - set(input_names))
    if unknown:
        raise ServingFailure("INVALID_ARGUMENT", f"unknown input names {unknown}; the signature takes {input_names}")
    arrays = {key: _json_to_array(key, value, signature_def.inputs[key]) for key, value in columns.items()}
    _, outputs = registry.predict(name, version, signature_name, arrays)

    if row_format:
        if len(outputs) == 1:
            (key, array), = outputs.items()
            return {"predictions": _array_to_json(key, array)}
        count = len(next(iter(outputs.values())))
        return {
            "predictions": [
                {key: _array_to_json(key, array[index]) for key, array in outputs.items()} for index in range(count)
            ]
        }
    if len(outputs) == 1:
        (key, array), = outputs.items()
        return {"outputs": _array_to_json(key, array)}
    return {"outputs": {key: _array_to_json(key, array) for key, array in outputs.items()}}


def _rest_metadata(registry: ModelRegistry, name: str, version: Optional[int]) -> dict:
    from google.protobuf import json_format

    servable = registry.get(name, version)
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
        "metadata": {"signature_def": json_format.MessageToDict(
            _signature_def_map(servable), preserving_proto_field_name=True
        )},
    }


def _rest_status(registry: ModelRegistry, name: str, version: Optional[int]) -> dict:
    registry.get(name, version)
    versions = [version] if version is not None else sorted(registry.servables[name], reverse=True)
    return {
        "model_version_status": [
            {"version": str(item), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for item in versions
        ]
    }


def _make_rest_handler(registry: ModelRegistry, max_body_bytes: int = DEFAULT_MAX_REST_BODY_BYTES):
    class RestHandler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # keep test output quiet
            logger.debug("REST %s", format % args)

        def _reply(self, status: int, payload: dict) -> None:
            with paused_gc():
                body = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def _handle(self, method: str) -> None:
            match = _REST_PATH.match(self.path)
            length = self._body_length()
            if length is None:
                return  # refused; the unread body (if any) goes with the closed connection
            body = self.rfile.read(length) if length else b""
            try:
                with paused_gc():  # JSON images are many small objects: see client.paused_gc
                    payload = self._route(method, match, body)
            except ServingFailure as failure:
                self._reply(_HTTP_STATUS.get(failure.code, 500), {"error": failure.message})
                return
            except Exception as error:  # never let one bad request take the server down
                logger.exception("REST request failed")
                self._reply(500, {"error": _first_line(error)})
                return
            self._reply(200, payload)

        def _body_length(self) -> Optional[int]:
            """The body's length from its header, or None after refusing it (400, 411, 413)."""
            declared = self.headers.get("Content-Length")
            chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
            refusal = None
            if chunked:
                refusal = (411, "chunked request bodies are not supported: send a Content-Length")
            elif declared is not None:
                try:
                    length = int(declared)
                except ValueError:
                    length = -1
                if length < 0:
                    refusal = (400, f"invalid Content-Length header {declared!r}")
                elif length > max_body_bytes:
                    refusal = (413, f"request body of {length} bytes exceeds this server's limit of "
                               f"{max_body_bytes} bytes; send smaller requests (tiles)")
                else:
                    return length
            else:
                return 0
            self.close_connection = True
            self._reply(refusal[0], {"error": refusal[1]})
            return None

        def _route(self, method: str, match, body: bytes) -> dict:
            if match is None or (method == "POST") != (match.group("verb") == ":predict"):
                raise ServingFailure("NOT_FOUND", f"Malformed request: {method} {self.path}")
            name, verb = match.group("name"), match.group("verb")
            version = int(match.group("version")) if match.group("version") else None
            if verb == ":predict":
                return _rest_predict(registry, name, version, body)
            if verb == "/metadata":
                return _rest_metadata(registry, name, version)
            return _rest_status(registry, name, version)

        def do_GET(self):
            self._handle("GET")

        def do_POST(self):
            self._handle("POST")

    return RestHandler


# ------------------------------------------------------------------------------ server
class InProcessModelServer:
    """gRPC (and optionally REST) servers on 127.0.0.1 with ephemeral ports; see module doc.

    models: ``{model_name: base_path}`` where ``base_path`` holds integer version folders.
    grpc_port, rest_port: 0 picks a free (ephemeral) port.
    max_message_bytes: gRPC receive/send limit (TF Serving's is 2 GiB - 1; lower it to test
      client-side tiling).
    max_rest_body_bytes: longest REST request body read (HTTP 413 above, see the module doc).
    Attributes after `start`: ``grpc_address`` and ``rest_address`` (``"127.0.0.1:PORT"``).
    """

    def __init__(
        self,
        models: Mapping[str, str],
        host: str = "127.0.0.1",
        grpc_port: int = 0,
        rest: bool = True,
        rest_port: int = 0,
        max_message_bytes: int = UNLIMITED_MESSAGE_BYTES,
        workers: int = 4,
        max_rest_body_bytes: int = DEFAULT_MAX_REST_BODY_BYTES,
    ):
        self.registry = ModelRegistry(models)
        self.host = host
        self.grpc_port = grpc_port
        self.rest = rest
        self.rest_port = rest_port
        self.max_message_bytes = max_message_bytes
        self.max_rest_body_bytes = max_rest_body_bytes
        self.workers = workers
        self.grpc_address: Optional[str] = None
        self.rest_address: Optional[str] = None
        self._grpc_server = None
        self._http_server = None
        self._http_thread = None

    def start(self) -> "InProcessModelServer":
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        options = [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
        ]
        self._grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.workers), options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _make_servicer(self.registry), self._grpc_server
        )
        port = self._grpc_server.add_insecure_port(f"{self.host}:{self.grpc_port}")
        self._grpc_server.start()
        self.grpc_address = f"{self.host}:{port}"
        if self.rest:
            handler = _make_rest_handler(self.registry, self.max_rest_body_bytes)
            self._http_server = http.server.ThreadingHTTPServer((self.host, self.rest_port), handler)
            self._http_server.daemon_threads = True
            self._http_thread = threading.Thread(target=self._http_server.serve_forever, daemon=True)
            self._http_thread.start()
            self.rest_address = f"{self.host}:{self._http_server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None).wait()
            self._grpc_server = None
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_thread.join()
            self._http_server = None

    def __enter__(self) -> "InProcessModelServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
