"""A client for SSP-Net served by TensorFlow Serving, over gRPC or REST.

gRPC uses ``tensorflow-serving-api``'s ``PredictionServiceStub`` (``Predict``, and
``GetModelMetadata`` to learn the model's channel count), with a deadline per call and retries
with exponential backoff when the server is UNAVAILABLE (starting, restarting, or not there yet).
REST posts TF Serving's JSON (``{"signature_name": ..., "instances": [...]}``, binary strings as
``{"b64": ...}``) to ``/v1/models/<name>[/versions/<v>]:predict`` with ``urllib``.

Any error the server answers (NOT_FOUND model, INVALID_ARGUMENT input, ...) or an unreachable
server becomes a `ServingError` with one line naming the server, the model and the cause.

Images are float32 ``[H, W, C]`` in [0, 1] on both sides, whatever the signature:

* ``serving_default`` sends uint8 (8-bit results);
* ``enhance_float`` sends float32 (results keep 16-bit precision);
* ``enhance_png`` sends PNG bytes (16-bit PNG when the source had more than 8 bits).

Every answer is checked before it is used: the output named as the signature promises, of the
request's shape (batch, height, width, channels) and type, finite and in range; anything else is a
`ServingError` (one line), never a wrong file.

An image whose request would exceed ``max_message_bytes`` (or that has more pixels than
`ssp_keras.inference.tiling.AUTO_TILE_PIXELS`, which also bounds the server's memory) is sent as
overlapping tiles and blended exactly as local tiled inference does
(`ssp_keras.inference.enhance.blend_tiles`), every tile normalised with the whole image's
statistics: the server computes them once (``image_statistics``, from the image downscaled as
`ssp_keras.inference.enhance.statistics_batch` does) and applies them to each float32 tile
(``enhance_with_statistics``, or ``enhance_uint8_with_statistics`` for ``serving_default``'s 8-bit
results), so ``predict`` and ``enhance`` agree on large images too.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gc
import http.client
import json
import logging
import math
import time
import urllib.error
import urllib.request
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from ssp_keras.errors import ServingError
from ssp_keras.inference.files import FilesResult, process_image_files
from ssp_keras.inference.outputs import plan_outputs
from ssp_keras.inference.statistics import STATISTICS_PIXELS, statistics_batch
from ssp_keras.inference.tiling import AUTO_TILE_PIXELS, DEFAULT_TILE_OVERLAP, DEFAULT_TILE_SIZE, PAD_MULTIPLE, blend_tiles
from ssp_keras.serving.export import (
    DEFAULT_MODEL_NAME,
    INPUT_IMAGE_BYTES,
    INPUT_IMAGES,
    INPUT_STATISTICS,
    OUTPUT_ENHANCED,
    OUTPUT_PNG_BYTES,
    OUTPUT_STATISTICS,
    SIGNATURE_FLOAT,
    SIGNATURE_PNG,
    SIGNATURE_STATISTICS,
    SIGNATURE_UINT8,
    SIGNATURE_UINT8_WITH_STATISTICS,
    SIGNATURE_WITH_STATISTICS,
)

logger = logging.getLogger(__name__)

#: Seconds one request may take before it is abandoned (gRPC deadline, HTTP timeout).
DEFAULT_TIMEOUT = 60.0
#: Further attempts after an UNAVAILABLE answer (or a refused connection), with backoff.
DEFAULT_RETRIES = 3
#: First backoff in seconds; doubled after each failed attempt.
DEFAULT_BACKOFF = 0.5
#: Largest request (and expected response) sent in one message. gRPC's own default is 4 MiB;
#: TF Serving accepts up to 2 GiB, and the client raises its channel limits to match this value.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 2**20
#: Bytes a request needs besides the pixel data (model spec, tensor shape, framing).
_REQUEST_OVERHEAD = 4096
#: Characters per sample in TF Serving JSON: "255," for uint8, "0.123456789," for float32.
_JSON_BYTES_PER_SAMPLE = {SIGNATURE_UINT8: 4, SIGNATURE_FLOAT: 13}
_SIGNATURES = (SIGNATURE_UINT8, SIGNATURE_FLOAT, SIGNATURE_PNG)
#: The name REST gives a signature's only output when it answers it unnamed.
_SINGLE_OUTPUT = {SIGNATURE_PNG: OUTPUT_PNG_BYTES, SIGNATURE_STATISTICS: OUTPUT_STATISTICS}
#: How far float results may stray outside [0, 1] (rounding) before an answer counts as wrong.
_RANGE_SLACK = 1e-3
_HTTP_CODES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED", 503: "UNAVAILABLE"}


def parse_server_address(text: str) -> str:
    """``HOST:PORT`` (``[IPv6]:PORT`` too) with a port in 1..65535; the text unchanged.

    Raises ``ValueError`` saying what is wrong, worded to follow the option or argument's name
    (``--server must be HOST:PORT ...``); ``ssp-net predict --server`` checks with it too.
    """
    host, separator, port = str(text).rpartition(":")
    if not separator or not host or host == "[]":
        raise ValueError(f"must be HOST:PORT (e.g. localhost:8500), got {text!r}")
    if host.startswith("[") != host.endswith("]") or (":" in host and not host.startswith("[")):
        raise ValueError(f"must be [ADDRESS]:PORT for an IPv6 address, got {text!r}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"needs a port in 1..65535, got {port!r} in {text!r}")
    return str(text)


class PredictionClient:
    """Talks to one model on one server. See the module doc for the protocols.

    server: ``HOST:PORT`` (gRPC port 8500 or REST port 8501 of ``tensorflow_model_server``).
    rest: use the REST API instead of gRPC.
    model, version: the served model name and an optional fixed version (default: latest).
    signature: ``serving_default``, ``enhance_float`` or ``enhance_png``.
    channels: the model's image channels; None asks the server (model metadata).
    timeout: seconds per request. retries, backoff: on UNAVAILABLE, wait backoff, 2*backoff, ...
    max_message_bytes: larger images are tiled (see module doc).
    """

    def __init__(
        self,
        server: str,
        model: str = DEFAULT_MODEL_NAME,
        signature: str = SIGNATURE_UINT8,
        rest: bool = False,
        version: Optional[int] = None,
        channels: Optional[int] = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
    ):
        from ssp_keras import defaults

        if signature not in _SIGNATURES:
            raise ValueError(f"unknown signature {signature!r}; choose one of {', '.join(_SIGNATURES)}")
        try:
            parse_server_address(server)
        except ValueError as error:
            raise ValueError(f"PredictionClient argument 'server' {error}") from None
        defaults.check(
            {"timeout": defaults.positive_number, "retries": defaults.non_negative_int,
             "backoff": defaults.non_negative_number, "max_message_bytes": defaults.positive_int,
             "tile_overlap": defaults.non_negative_int, "version": defaults.optional(defaults.positive_int),
             "channels": defaults.optional(defaults.one_of(defaults.CHANNEL_COUNTS))},
            dict(timeout=timeout, retries=retries, backoff=backoff, max_message_bytes=max_message_bytes,
                 tile_overlap=tile_overlap, version=version, channels=channels),
            lambda name: f"PredictionClient argument '{name}'",
        )
        self.server = server
        self.model = model
        self.signature = signature
        self.rest = rest
        self.version = version
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_message_bytes = max_message_bytes
        self.tile_overlap = tile_overlap
        self._channels = channels
        self._channel = None
        self._stub = None
        self._signatures = None  # {signature: {input: shape}}, asked once
        self._warned_statistics = False
        self._warned_coarse_statistics = False

    # ------------------------------------------------------------------ connection
    @property
    def protocol(self) -> str:
        return "REST" if self.rest else "gRPC"

    def _grpc_stub(self):
        if self._stub is None:
            import grpc
            from tensorflow_serving.apis import prediction_service_pb2_grpc

            limit = min(2**31 - 1, 2 * self.max_message_bytes + _REQUEST_OVERHEAD)
            self._channel = grpc.insecure_channel(
                self.server,
                options=[("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)],
            )
            self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        return self._stub

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = self._stub = None

    def __enter__(self) -> "PredictionClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _error(self, code: str, details: str) -> ServingError:
        details = " ".join(str(details).split())  # one line, whatever the server sent
        return ServingError(
            f"{self.protocol} server {self.server} answered {code} for model '{self.model}' "
            f"(signature '{self.signature}'): {details}"
        )

    def _with_retries(self, call: Callable, what: str):
        """Runs ``call()``; retries on UNAVAILABLE; turns every server error into `ServingError`."""
        attempt = 0
        while True:
            try:
                return call()
            except _Retryable as error:
                if attempt >= self.retries:
                    raise ServingError(
                        f"cannot reach the {self.protocol} server at {self.server} ({what}, "
                        f"{attempt + 1} attempts): {' '.join(error.details.split())}"
                    ) from None
                delay = self.backoff * 2**attempt
                logger.info("%s server %s unavailable (%s); retrying in %.1f s", self.protocol, self.server,
                            error.details, delay)
                time.sleep(delay)
                attempt += 1

    # ------------------------------------------------------------------ raw calls
    def predict(self, inputs: Dict[str, np.ndarray], signature: Optional[str] = None) -> Dict[str, np.ndarray]:
        """One Predict call of ``signature`` (default: the selected one) with named numpy inputs;
        returns the named numpy outputs (as sent: `_checked_output` checks them)."""
        signature = signature or self.signature
        call = self._rest_predict if self.rest else self._grpc_predict
        return self._with_retries(lambda: call(inputs, signature), "predict")

    def _grpc_predict(self, inputs, signature):
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._fill_spec(request.model_spec)
        request.model_spec.signature_name = signature
        for key, array in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(array))
        try:
            response = self._grpc_stub().Predict(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise self._grpc_failure(error) from None
        outputs = {}
        for key, proto in response.outputs.items():
            try:
                outputs[key] = tf.make_ndarray(proto)
            except Exception as error:  # a tensor whose content does not match its shape or type
                raise self._bad_answer(f"an unreadable '{key}' tensor ({_one_line(error)})") from None
        return outputs

    def _fill_spec(self, spec) -> None:
        spec.name = self.model
        if self.version is not None:
            spec.version.value = self.version

    def _grpc_failure(self, error) -> Exception:
        import grpc

        code = error.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            return _Retryable(error.details() or "unavailable")
        return self._error(code.name, error.details() or "")

    def _rest_url(self, suffix: str) -> str:
        version = f"/versions/{self.version}" if self.version is not None else ""
        return f"http://{self.server}/v1/models/{self.model}{version}{suffix}"

    def _rest_call(self, url: str, payload: Optional[dict] = None) -> dict:
        with paused_gc():
            data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
            with paused_gc():
                answer = json.loads(body)
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read()).get("error", "")
            except (ValueError, AttributeError):
                message = error.reason
            code = _HTTP_CODES.get(error.code, f"HTTP {error.code}")
            if error.code == 503:
                raise _Retryable(message) from None
            raise self._error(code, message) from None
        except urllib.error.URLError as error:  # refused, reset, DNS: the server is not there (yet)
            if isinstance(error.reason, TimeoutError):
                raise self._error("DEADLINE_EXCEEDED", f"no answer within {self.timeout:g} s") from None
            raise _Retryable(str(error.reason)) from None
        except TimeoutError:
            raise self._error("DEADLINE_EXCEEDED", f"no answer within {self.timeout:g} s") from None
        except ConnectionError as error:
            raise _Retryable(str(error)) from None
        except (http.client.HTTPException, ValueError) as error:  # not HTTP, or not JSON: not TF Serving's REST API
            printable = "".join(char if char.isprintable() else " " for char in str(error))
            details = " ".join(printable.split())[:120] or type(error).__name__
            raise ServingError(
                f"{self.protocol} server {self.server} did not answer like TensorFlow Serving's REST API "
                f"({type(error).__name__}: {details}); is {self.server} its REST port (8501 by default)?"
            ) from None
        if not isinstance(answer, dict):
            raise self._bad_answer(f"a JSON {type(answer).__name__} instead of an object")
        return answer

    def _rest_predict(self, inputs, signature):
        # Columnar format ("inputs"): one JSON value per named input, batch dimension included.
        with paused_gc():
            body = {"signature_name": signature, "inputs": {key: _to_json(a) for key, a in inputs.items()}}
        answer = self._rest_call(self._rest_url(":predict"), body)
        if "outputs" not in answer:
            raise self._bad_answer(f"no 'outputs' in its JSON answer (keys: {sorted(answer)[:5]})")
        outputs = answer["outputs"]
        if not isinstance(outputs, dict):  # a single output comes back unnamed
            outputs = {_SINGLE_OUTPUT.get(signature, OUTPUT_ENHANCED): outputs}
        try:
            with paused_gc():
                return {key: _from_json(value) for key, value in outputs.items()}
        except (ValueError, TypeError, binascii.Error) as error:  # ragged lists, bad base64
            raise self._bad_answer(f"outputs that are no tensor ({_one_line(error)})") from None

    # ------------------------------------------------------------------ answers
    def _bad_answer(self, what: str) -> ServingError:
        return ServingError(
            f"{self.protocol} server {self.server} answered model '{self.model}' (signature '{self.signature}') "
            f"with {what}; is it an SSP-Net export (ssp-net export)?"
        )

    def _checked_output(self, outputs: dict, key: str, shape: tuple, kind: str) -> np.ndarray:
        """``outputs[key]`` after checking it is what was asked for: its ``shape`` (the request's batch,
        height, width and channels) and ``kind``: ``"uint8"`` (whole numbers 0..255), ``"float"``
        (finite numbers; images within [0, 1]) or ``"bytes"``. A `ServingError` (one line) otherwise."""
        if key not in outputs:
            raise self._bad_answer(f"no '{key}' output (it sent {sorted(outputs) or 'none'})")
        array = np.asarray(outputs[key])
        if array.dtype == object or array.dtype.kind in "SU":
            if kind != "bytes" or not all(isinstance(item, bytes) for item in array.reshape(-1)):
                raise self._bad_answer(f"'{key}' holding strings, not {'numbers' if kind != 'bytes' else 'bytes'}")
        elif kind == "bytes" or array.dtype.kind not in "uif":
            raise self._bad_answer(f"'{key}' of type {array.dtype}, not {kind}")
        if tuple(array.shape) != tuple(shape):
            raise self._bad_answer(f"'{key}' of shape {list(array.shape)} for a request of shape {list(shape)}")
        if kind == "uint8" and array.size and (array.dtype.kind == "f" or array.min() < 0 or array.max() > 255):
            raise self._bad_answer(f"'{key}' values outside the whole numbers 0..255 of an 8-bit image")
        if kind == "float" and not np.all(np.isfinite(array)):
            raise self._bad_answer(f"NaN or infinite values in '{key}'")
        return array

    def _checked_image(self, outputs: dict, key: str, shape: tuple, kind: str) -> np.ndarray:
        """An image output ``[1, H, W, C]``: `_checked_output`, and float values within [0, 1]."""
        array = self._checked_output(outputs, key, shape, kind)
        if kind == "float" and array.size and (array.min() < -_RANGE_SLACK or array.max() > 1 + _RANGE_SLACK):
            raise self._bad_answer(f"'{key}' values in [{array.min():.3g}, {array.max():.3g}], not in [0, 1]")
        return array

    # ------------------------------------------------------------------ metadata
    def _signature_map(self) -> Dict[str, Dict[str, list]]:
        """``{signature: {input name: shape}}`` of the served model (asked once); -1 = free dim."""
        if self._signatures is None:
            fetch = self._rest_signature_map if self.rest else self._grpc_signature_map
            self._signatures = self._with_retries(fetch, "metadata")
        return self._signatures

    def signature_inputs(self, signature: Optional[str] = None) -> Dict[str, list]:
        """``{input name: shape}`` of ``signature`` (default: the selected one); -1 = free dim."""
        signature = signature or self.signature
        signatures = self._signature_map()
        if signature not in signatures:
            raise self._error("INVALID_ARGUMENT", f"the model has no signature '{signature}'")
        return signatures[signature]

    def _rest_signature_map(self):
        payload = self._rest_call(self._rest_url("/metadata"))
        try:
            signatures = payload["metadata"]["signature_def"]["signature_def"]
            return {
                name: {key: [int(dim.get("size", -1)) for dim in info.get("tensor_shape", {}).get("dim", [])]
                       for key, info in definition.get("inputs", {}).items()}
                for name, definition in signatures.items()
            }
        except (KeyError, TypeError, AttributeError, ValueError):
            raise self._bad_answer("metadata without signature definitions") from None

    def _grpc_signature_map(self):
        import grpc
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._fill_spec(request.model_spec)
        try:
            response = self._grpc_stub().GetModelMetadata(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise self._grpc_failure(error) from None
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        if "signature_def" not in response.metadata or not response.metadata["signature_def"].Unpack(signature_map):
            raise self._bad_answer("metadata without signature definitions")
        return {
            name: {key: [dim.size for dim in info.tensor_shape.dim] for key, info in definition.inputs.items()}
            for name, definition in signature_map.signature_def.items()
        }

    @property
    def channels(self) -> int:
        """The model's image channels (given, or read once from the model's metadata)."""
        if self._channels is None:
            # enhance_png takes bytes: the channel count is on the image signatures' inputs.
            signature = SIGNATURE_UINT8 if self.signature == SIGNATURE_PNG else self.signature
            shape = self.signature_inputs(signature).get(INPUT_IMAGES, [])
            if len(shape) != 4 or shape[-1] not in (1, 3):
                raise self._error("INVALID_ARGUMENT", f"unexpected image input shape {shape} in the metadata")
            self._channels = int(shape[-1])
        return self._channels

    @property
    def tiles_with_statistics(self) -> bool:
        """Whether the served model has the statistics signatures (`SIGNATURE_STATISTICS` and
        `SIGNATURE_WITH_STATISTICS`), which let tiles be normalised like the whole image."""
        signatures = self._signature_map()
        return SIGNATURE_STATISTICS in signatures and SIGNATURE_WITH_STATISTICS in signatures

    # ------------------------------------------------------------------ images
    def enhance(self, image: np.ndarray, bit_depth: int = 8) -> np.ndarray:
        """Enhances float32 ``[H, W, C]`` in [0, 1] remotely; returns float32 ``[H, W, C]``.

        bit_depth: the source's precision, used by ``enhance_png`` to send a 16-bit PNG (>8).
        Tiles when the image is too large for one message or has more than `AUTO_TILE_PIXELS`:
        with the whole image's normalisation statistics when the model has the statistics
        signatures (uint8 tiles for ``serving_default``, float32 for the others), as ``ssp-net
        enhance`` does; each tile on its own with a warning for models exported without them.
        """
        image = np.asarray(image, dtype=np.float32)
        if image.ndim == 2:
            image = image[:, :, None]
        height, width, channels = image.shape
        if channels != self.channels:
            raise ValueError(f"image has {channels} channels, the served model takes {self.channels}")
        per_sample = self._bytes_per_sample(self.signature, bit_depth)
        if self._fits(height * width, channels * per_sample) and height * width <= AUTO_TILE_PIXELS:
            return self._enhance_one(image, bit_depth)
        if not self.tiles_with_statistics:
            if not self._warned_statistics:
                logger.warning(
                    "model '%s' at %s has no %s signature (exported by an older ssp-keras): tiles of large images "
                    "are normalised on their own and may differ in tone from ssp-net enhance; export it again",
                    self.model, self.server, SIGNATURE_STATISTICS)
                self._warned_statistics = True
            tile = self._tile_side(channels * per_sample)
            return blend_tiles(image, lambda part: self._enhance_one(part, bit_depth), tile, self.tile_overlap)
        float_bytes = self._bytes_per_sample(SIGNATURE_FLOAT, bit_depth)
        statistics = self._statistics(image, channels * float_bytes)
        # 8-bit results (serving_default): uint8 tiles where the model has them, else float32 ones.
        eight_bit = self.signature == SIGNATURE_UINT8 and SIGNATURE_UINT8_WITH_STATISTICS in self._signature_map()
        tile = self._tile_side(channels * (self._bytes_per_sample(SIGNATURE_UINT8, 8) if eight_bit else float_bytes))
        return blend_tiles(image, lambda part: self._enhance_with(part, statistics, eight_bit), tile, self.tile_overlap)

    def _statistics(self, image: np.ndarray, bytes_per_pixel: float) -> np.ndarray:
        """The whole image's normalisation statistics ``[1, S]`` from the server (`SIGNATURE_STATISTICS`),
        computed from what `statistics_batch` makes of the image (downscaled further only when a
        message could not hold that: then the tiles' tone can differ from ssp-net enhance's, which
        is said once per client)."""
        fitting = int((self.max_message_bytes - _REQUEST_OVERHEAD) / bytes_per_pixel)
        local = min(STATISTICS_PIXELS, image.shape[0] * image.shape[1])  # what ssp-net enhance uses
        if not self._fits(local, bytes_per_pixel) and not self._warned_coarse_statistics:
            # A coarser copy than ssp-net enhance's shifts every normalisation layer's statistics.
            needed = math.ceil(self._request_bytes(local, bytes_per_pixel) / 2**20)
            logger.warning(
                "a %s MiB message holds the whole image's statistics only from a copy of %d pixels (ssp-net "
                "enhance uses %d): results may differ in tone from ssp-net enhance; allow messages of %d MiB "
                "(--max-message-mb, and the server's limit) to match it",
                f"{self.max_message_bytes / 2**20:g}", fitting, local, needed)
            self._warned_coarse_statistics = True
        batch = statistics_batch(image, max_pixels=min(STATISTICS_PIXELS, fitting))
        outputs = self.predict({INPUT_IMAGES: batch}, SIGNATURE_STATISTICS)
        if OUTPUT_STATISTICS not in outputs:
            raise self._bad_answer(f"no '{OUTPUT_STATISTICS}' output (it sent {sorted(outputs) or 'none'})")
        size = np.shape(outputs[OUTPUT_STATISTICS])[-1] if np.ndim(outputs[OUTPUT_STATISTICS]) == 2 else -1
        return self._checked_output(outputs, OUTPUT_STATISTICS, (1, size), "float").astype(np.float32)

    def _enhance_with(self, tile: np.ndarray, statistics: np.ndarray, eight_bit: bool) -> np.ndarray:
        """One tile enhanced with the whole image's ``statistics``, as uint8 or float32 samples."""
        shape = (1,) + tile.shape
        if eight_bit:
            samples = np.round(np.clip(tile, 0.0, 1.0) * 255.0).astype(np.uint8)[None]
            outputs = self.predict({INPUT_IMAGES: samples, INPUT_STATISTICS: statistics}, SIGNATURE_UINT8_WITH_STATISTICS)
            return self._checked_image(outputs, OUTPUT_ENHANCED, shape, "uint8")[0].astype(np.float32) / np.float32(255.0)
        outputs = self.predict({INPUT_IMAGES: tile[None], INPUT_STATISTICS: statistics}, SIGNATURE_WITH_STATISTICS)
        return self._checked_image(outputs, OUTPUT_ENHANCED, shape, "float")[0].astype(np.float32)

    def _bytes_per_sample(self, signature: str, bit_depth: int) -> float:
        if signature == SIGNATURE_PNG:
            raw = 2 if bit_depth > 8 else 1  # PNG rarely exceeds raw size (+ filter bytes)
            return raw * (4 / 3 if self.rest else 1) * 1.01
        if self.rest:
            return _JSON_BYTES_PER_SAMPLE[signature]
        return 1 if signature == SIGNATURE_UINT8 else 4

    def _fits(self, pixels: int, bytes_per_pixel: float) -> bool:
        return self._request_bytes(pixels, bytes_per_pixel) <= self.max_message_bytes

    @staticmethod
    def _request_bytes(pixels: int, bytes_per_pixel: float) -> float:
        return pixels * bytes_per_pixel + _REQUEST_OVERHEAD

    def _tile_side(self, bytes_per_pixel: float) -> int:
        """The side of square tiles (a multiple of 32) whose requests fit in one message."""
        side = math.isqrt(max(int((self.max_message_bytes - _REQUEST_OVERHEAD) / bytes_per_pixel), 1))
        side = min(DEFAULT_TILE_SIZE, side // PAD_MULTIPLE * PAD_MULTIPLE)
        if side < 2 * PAD_MULTIPLE or side <= self.tile_overlap:
            raise ValueError(
                f"max_message_bytes={self.max_message_bytes} is too small to send even a "
                f"{2 * PAD_MULTIPLE}x{2 * PAD_MULTIPLE} tile"
            )
        return side

    def _enhance_one(self, image: np.ndarray, bit_depth: int) -> np.ndarray:
        shape = (1,) + image.shape
        if self.signature == SIGNATURE_UINT8:
            samples = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)[None]
            result = self._checked_image(self.predict({INPUT_IMAGES: samples}), OUTPUT_ENHANCED, shape, "uint8")
            return result[0].astype(np.float32) / np.float32(255.0)
        if self.signature == SIGNATURE_FLOAT:
            result = self._checked_image(self.predict({INPUT_IMAGES: image[None]}), OUTPUT_ENHANCED, shape, "float")
            return result[0].astype(np.float32)
        encoded = np.array([encode_png(image, 16 if bit_depth > 8 else 8)], dtype=object)
        result = self._checked_output(self.predict({INPUT_IMAGE_BYTES: encoded}), OUTPUT_PNG_BYTES, (1,), "bytes")
        decoded = decode_png(result.reshape(-1)[0])
        if decoded.shape != image.shape:
            raise self._bad_answer(f"a PNG of shape {list(decoded.shape)} for an image of shape {list(image.shape)}")
        return decoded


@contextlib.contextmanager
def paused_gc():
    """Suspends Python's cyclic garbage collector while JSON images are built or parsed.

    An image as JSON is hundreds of thousands of small lists; allocating them triggers full
    collections that walk every object of the process (millions once TensorFlow is loaded),
    which made one 257x301 REST round trip take seconds instead of a tenth of one. The objects
    have no cycles, so nothing is lost by collecting later.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Retryable(Exception):
    """The server could not be reached or said UNAVAILABLE: worth another attempt."""

    def __init__(self, details: str):
        super().__init__(details)
        self.details = details


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:160] or type(error).__name__


def _to_json(array: np.ndarray):
    """Numpy to TF Serving JSON: nested lists; byte strings as ``{"b64": ...}``.

    float32 samples go with 8 decimals (within float32's precision on [0, 1] images, where the
    full repr of a float32 as a double takes about 19 characters: JSON half as long to write and parse).
    """
    if array.dtype == object:
        return np.vectorize(
            lambda item: {"b64": base64.b64encode(item).decode("ascii")}, otypes=[object]
        )(array).tolist()
    if array.dtype == np.float32:
        return np.round(array.astype(np.float64), 8).tolist()
    return array.tolist()


def _from_json(value) -> np.ndarray:
    """TF Serving JSON to numpy; ``{"b64": ...}`` leaves become bytes (object arrays)."""

    def decode(item):
        if isinstance(item, dict) and "b64" in item:
            return base64.b64decode(item["b64"])
        if isinstance(item, list):
            return [decode(inner) for inner in item]
        return item

    leaf = value
    while isinstance(leaf, list) and leaf:
        leaf = leaf[0]
    if isinstance(leaf, (dict, str)):  # binary ({"b64": ...}) or text strings
        return np.array(decode(value), dtype=object)
    return np.array(value)  # numbers: numpy parses nested lists fastest on its own


def encode_png(image: np.ndarray, bit_depth: int = 8) -> bytes:
    """Float ``[H, W, C]`` in [0, 1] to PNG bytes, 8 or 16 bits (OpenCV: 16-bit colour works)."""
    import cv2

    maximum = 65535 if bit_depth == 16 else 255
    samples = np.round(np.clip(image, 0.0, 1.0) * maximum).astype(np.uint16 if bit_depth == 16 else np.uint8)
    if samples.ndim == 3 and samples.shape[-1] == 3:
        samples = np.ascontiguousarray(samples[..., ::-1])  # OpenCV orders colour BGR
    ok, encoded = cv2.imencode(".png", samples)
    if not ok:
        raise ValueError("could not encode the image as PNG")
    return encoded.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes to float32 ``[H, W, C]`` in [0, 1] (8- or 16-bit, gray or RGB)."""
    import cv2

    samples = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if samples is None:
        raise ServingError("the server returned bytes that are not a PNG image")
    if samples.ndim == 2:
        samples = samples[:, :, None]
    elif samples.shape[-1] >= 3:
        samples = samples[..., 2::-1]  # BGR(A) -> RGB
    return samples.astype(np.float32) / np.float32(np.iinfo(samples.dtype).max)


def predict_files(
    client: PredictionClient,
    inputs: Sequence[str],
    out_dir: str,
    progress: Optional[Callable[[str], None]] = None,
    dicom_as: str = "dicom",
    overwrite: bool = True,
) -> FilesResult:
    """Enhances files and folders through ``client`` into ``out_dir`` (like ``ssp-net enhance``).

    Names and relative folders are kept, every frame of a TIFF stack or multi-frame DICOM is sent
    and written back, DICOM inputs give derived DICOMs (or PNG with ``dicom_as="png"``),
    unreadable files are skipped with a warning, inputs never overwritten
    (`ssp_keras.inference.enhance.process_image_files`); existing outputs are replaced unless
    ``overwrite`` is False. Results are 8-bit for ``serving_default`` (its outputs are uint8) and
    keep the source's bit depth otherwise.
    """
    # bad inputs or --out fail before the server is contacted
    plan_outputs(inputs, out_dir, dicom_as=dicom_as, overwrite=overwrite)
    channels = client.channels

    def transform(image, info):
        enhanced = client.enhance(image, bit_depth=info.bit_depth)
        return enhanced, (8 if client.signature == SIGNATURE_UINT8 else None)

    return process_image_files(
        inputs, out_dir, transform, channels, progress,
        dicom_as=dicom_as,
        overwrite=overwrite,
        model_name=client.model,
        model_source=f"{client.model} served at {client.server} (signature {client.signature})",
        purpose="ssp-net predict",
    )
