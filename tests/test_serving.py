"""The serving client against the in-process TF Serving stand-in, over gRPC and REST."""

import base64
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

import grpc
import tensorflow as tf

from ssp_keras.errors import ServingError
from ssp_keras.inference import enhance_array
from ssp_keras.serving.client import PredictionClient, decode_png, encode_png
from ssp_keras.serving.export import export_saved_model
from ssp_keras.serving.testing import InProcessModelServer
from helpers import random_image, run_cli
from tiny import tiny_generator

SIGNATURES = ("serving_default", "enhance_float", "enhance_png")
#: Request limits of the model 'limited' (set at export).
LIMITED_PIXELS, LIMITED_BATCH = 64 * 64, 2
GARBAGE_B64 = base64.b64encode(b"garbage").decode()


@pytest.fixture(scope="module")
def generators():
    return {"gray": tiny_generator(1), "rgb": tiny_generator(3)}


@pytest.fixture(scope="module")
def models_base(tmp_path_factory, generators):
    """Both generators exported once, as models 'gray' and 'rgb' under one base folder, and the
    gray one again as 'limited', with request limits small enough to test cheaply."""
    base = tmp_path_factory.mktemp("models")
    for name, generator in generators.items():
        export_saved_model(generator, str(base), name=name, warmup=False)
    export_saved_model(generators["gray"], str(base), name="limited", warmup=False,
                       max_pixels=LIMITED_PIXELS, max_batch=LIMITED_BATCH)
    return base


@pytest.fixture(scope="module")
def server(models_base, generators):
    models = {name: str(models_base / name) for name in [*generators, "limited"]}
    with InProcessModelServer(models) as running:
        yield running


def address(server, rest):
    return server.rest_address if rest else server.grpc_address


def eight_bit(image):
    """``image`` rounded to 8-bit levels, so sending it as uint8 loses nothing."""
    return (np.round(image * 255) / 255).astype(np.float32)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post_json(url, payload):
    """Raw REST call: ``(HTTP status, parsed JSON body)``, errors included."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# ------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("rest", [False, True], ids=["grpc", "rest"])
@pytest.mark.parametrize("model", ["gray", "rgb"])
@pytest.mark.parametrize("signature", SIGNATURES)
def test_odd_sizes_round_trip_like_local_inference(server, generators, rest, model, signature):
    channels = 1 if model == "gray" else 3
    image = eight_bit(random_image(257, 301, channels, seed=7))
    with PredictionClient(address(server, rest), model=model, signature=signature, rest=rest) as client:
        assert client.channels == channels  # learnt from the model's metadata
        served = client.enhance(image)
    local = enhance_array(generators[model], image)
    assert served.shape == (257, 301, channels) and served.dtype == np.float32
    assert np.abs(np.round(served * 255) - np.round(local * 255)).max() <= 1


def test_enhance_float_keeps_float_precision(server, generators):
    image = random_image(64, 70, seed=8)
    with PredictionClient(server.grpc_address, model="gray", signature="enhance_float") as client:
        np.testing.assert_allclose(client.enhance(image), enhance_array(generators["gray"], image), atol=1e-5)


def test_large_images_are_tiled_within_the_message_limit(server, generators):
    from ssp_keras.inference import blend_tiles
    from ssp_keras.inference.statistics import compiled_with_statistics, image_statistics

    image = eight_bit(random_image(384, 352, seed=9))
    # 384 x 352 bytes do not fit in 50 kB: uint8 tiles of 192 (the largest multiple of 32 that fits;
    # float32 ones for enhance_float: 96), every one normalised with statistics of the whole image,
    # which is sent as float32 and so downscaled to fit too.
    model = generators["gray"]
    statistics = image_statistics(model, image, max_pixels=(50_000 - 4096) // 4)
    enhance_with = compiled_with_statistics(model)[1]
    for signature, side in (("serving_default", 192), ("enhance_float", 96)):
        with PredictionClient(server.grpc_address, model="gray", signature=signature, max_message_bytes=50_000,
                              tile_overlap=32) as client:
            assert client._tile_side(1 if signature == "serving_default" else 4) == side
            assert client.tiles_with_statistics
            served = client.enhance(image)
        local = blend_tiles(image, lambda tile: np.asarray(enhance_with(tile[None], statistics))[0], side, 32)
        assert np.abs(np.round(served * 255) - np.round(local * 255)).max() <= 1, signature


def test_statistics_coarser_than_enhances_are_said_once(server, monkeypatch, caplog):
    """A message limit that cannot hold the statistics batch ssp-net enhance uses gives a coarser
    copy (tones then differ from enhance's): one warning naming the limit that would match."""
    from ssp_keras.serving import client as client_module

    image = eight_bit(random_image(384, 352, seed=9))
    with PredictionClient(server.grpc_address, model="gray", max_message_bytes=50_000, tile_overlap=32) as client:
        client.enhance(image)
        client.enhance(image)
    warnings = [record.getMessage() for record in caplog.records if "differ in tone" in record.getMessage()]
    assert len(warnings) == 1 and "a 0.0476837 MiB message" in warnings[0] and "copy of 11476 pixels" in warnings[0]
    assert "enhance uses 135168" in warnings[0] and "allow messages of 1 MiB" in warnings[0]  # 384 x 352 float32

    caplog.clear()  # a limit that holds the whole image as float32: the same statistics as enhance, no word
    monkeypatch.setattr(client_module, "AUTO_TILE_PIXELS", 100_000)
    with PredictionClient(server.grpc_address, model="gray", max_message_bytes=600_000, tile_overlap=32) as client:
        client.enhance(image)
    assert not [record for record in caplog.records if "differ in tone" in record.getMessage()]


def test_a_model_exported_without_statistics_is_tiled_tile_by_tile_with_a_warning(server, generators, monkeypatch,
                                                                                 caplog):
    from ssp_keras.inference import blend_tiles

    image = eight_bit(random_image(384, 352, seed=9))
    monkeypatch.setattr(PredictionClient, "tiles_with_statistics", property(lambda self: False))
    with PredictionClient(server.grpc_address, model="gray", max_message_bytes=50_000, tile_overlap=32) as client:
        served = client.enhance(image)
        client.enhance(image)
    # The server sees each tile on its own, so each tile is normalised with its own statistics.
    local = blend_tiles(image, lambda tile: enhance_array(generators["gray"], tile), 192, 32)
    assert np.abs(np.round(served * 255) - np.round(local * 255)).max() <= 1
    assert [record.getMessage() for record in caplog.records].count(next(
        record.getMessage() for record in caplog.records if "no image_statistics signature" in record.getMessage())) == 1


def test_a_server_limit_below_the_request_is_a_clear_error(models_base):
    with InProcessModelServer({"gray": str(models_base / "gray")}, rest=False, max_message_bytes=20_000) as small:
        with PredictionClient(small.grpc_address, model="gray", channels=1) as client:
            with pytest.raises(ServingError, match="RESOURCE_EXHAUSTED"):
                client.enhance(random_image(200, 200))


# ------------------------------------------------------------------------------ malformed requests
def raw_grpc_predict(server, signature, inputs, model="gray"):
    """Predict with ``inputs`` as arrays, or as ready TensorProtos (e.g. `claimed_tensor`)."""
    from tensorflow.core.framework.tensor_pb2 import TensorProto
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(value if isinstance(value, TensorProto) else tf.make_tensor_proto(value))
    with grpc.insecure_channel(server.grpc_address) as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)


@pytest.mark.parametrize(
    "signature, inputs, message",
    [
        ("serving_default", {"images": np.zeros((1, 8, 8, 1), np.float32)}, "uint8"),
        ("serving_default", {"images": np.zeros((8, 8, 1), np.uint8)}, "shape"),
        ("serving_default", {"images": np.zeros((1, 8, 8, 3), np.uint8)}, "shape"),
        ("serving_default", {"pixels": np.zeros((1, 8, 8, 1), np.uint8)}, "input names"),
        ("enhance_png", {"image_bytes": np.array([b"garbage bytes"], dtype=object)}, "image"),
        ("no_such_signature", {"images": np.zeros((1, 8, 8, 1), np.uint8)}, "not found in signature def"),
    ],
    ids=["dtype", "rank", "channels", "input-name", "garbage-png", "signature"],
)
def test_malformed_grpc_requests_are_invalid_argument(server, signature, inputs, message):
    with pytest.raises(grpc.RpcError) as caught:
        raw_grpc_predict(server, signature, inputs)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in caught.value.details()
    # ... and the server is still serving.
    response = raw_grpc_predict(server, "serving_default", {"images": np.zeros((1, 8, 8, 1), np.uint8)})
    assert tf.make_ndarray(response.outputs["enhanced"]).shape == (1, 8, 8, 1)


def test_client_turns_server_errors_into_one_line(server):
    with PredictionClient(server.grpc_address, model="missing") as client:
        with pytest.raises(ServingError) as caught:
            client.enhance(random_image(40, 40))
    message = str(caught.value)
    assert "NOT_FOUND" in message and "missing" in message and "\n" not in message
    with PredictionClient(server.grpc_address, model="gray", signature="enhance_png") as client:
        with pytest.raises(ServingError, match="INVALID_ARGUMENT.*image"):
            client.predict({"image_bytes": np.array([b"\x89PNG garbage"], dtype=object)})


# ------------------------------------------------------------------------------ REST formats
def test_rest_row_and_columnar_formats(server):
    url = f"http://{server.rest_address}/v1/models/gray:predict"
    images = np.random.default_rng(1).integers(0, 256, (2, 20, 30, 1)).tolist()
    status, row = post_json(url, {"instances": images})
    assert status == 200 and np.array(row["predictions"]).shape == (2, 20, 30, 1)
    status, columnar = post_json(url, {"signature_name": "serving_default", "inputs": {"images": images}})
    assert status == 200 and columnar["outputs"] == row["predictions"]
    status, named_rows = post_json(url, {"instances": [{"images": image} for image in images]})
    assert status == 200 and named_rows["predictions"] == row["predictions"]


def test_rest_png_bytes_as_b64(server, generators):
    url = f"http://{server.rest_address}/v1/models/gray:predict"
    images = [eight_bit(random_image(33, 45, seed=2)), eight_bit(random_image(64, 20, seed=3))]
    instances = [{"b64": base64.b64encode(encode_png(image)).decode()} for image in images]
    status, body = post_json(url, {"signature_name": "enhance_png", "instances": instances})
    assert status == 200 and len(body["predictions"]) == 2
    for image, prediction in zip(images, body["predictions"]):
        decoded = decode_png(base64.b64decode(prediction["b64"]))
        local = enhance_array(generators["gray"], image)
        assert np.abs(np.round(decoded * 255) - np.round(local * 255)).max() <= 1


@pytest.mark.parametrize(
    "path, payload, status, message",
    [
        ("/v1/models/missing:predict", {"instances": [[[[0]]]]}, 404, "not found for request: Latest(missing)"),
        ("/v1/models/gray/versions/9:predict", {"instances": [[[[0]]]]}, 404, "Specific(gray, 9)"),
        ("/v1/models/gray:predict", b"{not json", 400, "JSON Parse error"),
        ("/v1/models/gray:predict", {"instances": [[[[0.5]]]]}, 400, "integers"),
        ("/v1/models/gray:predict", {"instances": [[[0]]]}, 400, "shape"),
        ("/v1/models/gray:predict", {"instances": [[[[0]]], [[[0], [1]]]]}, 400, "rectangular"),
        ("/v1/models/gray:predict", {"signature_name": "enhance_png", "instances": [{"b64": GARBAGE_B64}]},
         400, "image"),
        ("/v1/models/gray:predict", {"rows": []}, 400, "instances"),
    ],
    ids=["model", "version", "json", "dtype", "rank", "ragged", "garbage-png", "no-inputs"],
)
def test_rest_errors(server, path, payload, status, message):
    code, body = post_json(f"http://{server.rest_address}{path}", payload)
    assert code == status and set(body) == {"error"} and message in body["error"]


def test_rest_status_and_metadata(server):
    with urllib.request.urlopen(f"http://{server.rest_address}/v1/models/rgb", timeout=30) as response:
        status = json.loads(response.read())
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    with urllib.request.urlopen(f"http://{server.rest_address}/v1/models/rgb/metadata", timeout=30) as response:
        metadata = json.loads(response.read())
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert set(SIGNATURES) <= set(signatures)
    dims = signatures["serving_default"]["inputs"]["images"]["tensor_shape"]["dim"]
    assert [int(dim["size"]) for dim in dims] == [-1, -1, -1, 3]


# ------------------------------------------------------------------------------ retries
def test_retries_then_a_clear_error_when_nobody_listens(monkeypatch):
    import ssp_keras.serving.client as client_module

    delays = []

    class Clock:  # the client's `time`, recording its sleeps (the time module itself is left alone)
        sleep = staticmethod(delays.append)

        def __getattr__(self, name):
            return getattr(time, name)

    monkeypatch.setattr(client_module, "time", Clock())
    with PredictionClient(f"127.0.0.1:{free_port()}", retries=2, backoff=0.05, timeout=5) as client:
        with pytest.raises(ServingError, match="cannot reach the gRPC server .* 3 attempts"):
            client.enhance(random_image(32, 32))
    assert delays == [0.05, 0.1]  # backed off twice, doubling


def test_retries_reach_a_server_that_starts_late(models_base):
    late = InProcessModelServer({"gray": str(models_base / "gray")}, grpc_port=free_port(), rest=False)
    timer = threading.Timer(0.5, late.start)
    timer.start()
    try:
        with PredictionClient(f"127.0.0.1:{late.grpc_port}", model="gray", retries=6, backoff=0.1) as client:
            assert client.enhance(random_image(40, 40)).shape == (40, 40, 1)
    finally:
        timer.join()
        late.stop()


# ------------------------------------------------------------------------------ CLI
def test_cli_predict_writes_files(server, tmp_path, monkeypatch, capsys):
    from ssp_keras.data.io import write_image

    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    write_image(str(inputs / "one.png"), random_image(50, 61), bit_depth=8)
    write_image(str(inputs / "sub" / "two.tif"), random_image(33, 40), bit_depth=16)
    for rest in (False, True):
        out = tmp_path / ("out-rest" if rest else "out-grpc")
        argv = ["predict", "--server", address(server, rest), "--model", "gray", str(inputs), "--out", str(out)]
        argv += ["--rest", "--signature", "enhance_float"] if rest else []
        assert run_cli(monkeypatch, argv) == 0
        assert (out / "one.png").is_file() and (out / "sub" / "two.tif").is_file()
        assert "Enhanced 2 image(s)" in capsys.readouterr().out


@pytest.mark.parametrize("rest", [False, True], ids=["grpc", "rest"])
def test_cli_predict_not_found_is_one_line_and_exit_1(server, tmp_path, monkeypatch, capsys, rest):
    from ssp_keras.data.io import write_image

    (tmp_path / "in").mkdir()
    write_image(str(tmp_path / "in" / "one.png"), random_image(32, 32), bit_depth=8)
    argv = ["predict", "--server", address(server, rest), "--model", "nope", str(tmp_path / "in" / "one.png"),
            "--out", str(tmp_path / "out")] + (["--rest"] if rest else [])
    assert run_cli(monkeypatch, argv) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("ssp-net predict: error: ") and "NOT_FOUND" in error and "'nope'" in error
    assert "\n" not in error


# ------------------------------------------------------------------------------ request limits
def claimed_tensor(shape, dtype=tf.uint8):
    """A TensorProto that claims ``shape`` and carries no content (the server zero-fills it)."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in shape]
    return tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims))


def assert_invalid_argument(server, signature, inputs, *messages, model="limited"):
    with pytest.raises(grpc.RpcError) as caught:
        raw_grpc_predict(server, signature, inputs, model=model)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for message in messages:
        assert message in caught.value.details()


@pytest.mark.parametrize("signature, dtype", [("serving_default", tf.uint8), ("enhance_float", tf.float32)])
def test_a_request_claiming_a_huge_image_is_refused_and_the_server_keeps_serving(server, signature, dtype):
    from tensorflow_serving.apis import predict_pb2

    claim = claimed_tensor([1, 1536, 1536, 1], dtype)
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "limited", signature
    request.inputs["images"].CopyFrom(claim)
    assert request.ByteSize() < 100  # the 62-byte request
    assert_invalid_argument(server, signature, {"images": claim},
                            "1536 x 1536 = 2359296 pixels", f"{LIMITED_PIXELS} pixels per image", "--max-pixels")
    # ... and the next request, within the limits, is answered.
    response = raw_grpc_predict(server, "serving_default", {"images": np.zeros((1, 64, 64, 1), np.uint8)}, model="limited")
    assert tf.make_ndarray(response.outputs["enhanced"]).shape == (1, 64, 64, 1)


def test_too_many_images_in_one_request_are_refused(server):
    assert_invalid_argument(server, "serving_default", {"images": np.zeros((3, 8, 8, 1), np.uint8)},
                            "batch of 3 images", f"{LIMITED_BATCH} images per request", "--max-batch")
    images = np.array([encode_png(random_image(8, 8))] * 3, dtype=object)
    assert_invalid_argument(server, "enhance_png", {"image_bytes": images}, "batch of 3 images")


def test_a_png_whose_header_claims_a_huge_image_is_refused_before_decoding(server):
    import struct

    small = encode_png(random_image(8, 8))
    bomb = small[:16] + struct.pack(">II", 100_000, 100_000) + small[24:]  # IHDR width, height
    assert_invalid_argument(server, "enhance_png", {"image_bytes": np.array([bomb], dtype=object)},
                            "header declares 100000 x 100000", "--max-pixels")
    too_big = encode_png(random_image(65, 64))  # a real image, one row over the limit
    assert_invalid_argument(server, "enhance_png", {"image_bytes": np.array([too_big], dtype=object)},
                            "65 x 64 = 4160 pixels")


@pytest.mark.parametrize("signature, inputs", [
    ("serving_default", {"images": np.zeros((0, 8, 8, 1), np.uint8)}),
    ("enhance_float", {"images": np.zeros((0, 8, 8, 1), np.float32)}),
    ("enhance_png", {"image_bytes": np.array([], dtype=object)}),
])
def test_an_empty_batch_is_a_clear_error(server, signature, inputs):
    assert_invalid_argument(server, signature, inputs, "empty batch: the request holds no image", model="gray")


def raw_http(address, head: bytes) -> tuple:
    """Sends ``head`` (request line and headers, no body) and reads until the server closes."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head)
        reply = b""
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


@pytest.mark.parametrize("header, status, message", [
    (f"Content-Length: {10**12}", 413, "exceeds this server's limit"),
    ("Content-Length: lots", 400, "invalid Content-Length"),
    ("Transfer-Encoding: chunked", 411, "Content-Length"),
])
def test_rest_bodies_over_the_limit_are_refused_unread(server, header, status, message):
    head = (f"POST /v1/models/gray:predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"{header}\r\n\r\n").encode()
    code, body = raw_http(server.rest_address, head)  # a server that read the body would hang here
    assert code == status and set(body) == {"error"} and message in body["error"]
    with urllib.request.urlopen(f"http://{server.rest_address}/v1/models/gray", timeout=30) as response:
        assert response.status == 200  # still serving


# ------------------------------------------------------------------------------ answers are checked
class _Answering:
    """Makes the in-process server answer every Predict with ``outputs`` (the registry's result)."""

    def __init__(self, server, monkeypatch):
        self.server, self.monkeypatch = server, monkeypatch

    def __call__(self, outputs):
        servable = self.server.registry.get("gray")
        self.monkeypatch.setattr(self.server.registry, "predict", lambda *args: (servable, outputs))


WRONG_ANSWERS = [
    ("serving_default", {"enhanced": np.zeros((1, 2, 2, 1), np.uint8)}, "'enhanced' of shape [1, 2, 2, 1] for a request of shape [1, 64, 48, 1]"),
    ("serving_default", {"enhanced": np.zeros((0, 64, 48, 1), np.uint8)}, "'enhanced' of shape [0"),  # REST: []
    ("serving_default", {"enhanced": np.zeros((1, 64, 48, 3), np.uint8)}, "of shape [1, 64, 48, 3]"),
    # (two outputs: REST drops the name of a single one, as TF Serving does)
    ("serving_default", {"other": np.zeros((1, 64, 48, 1), np.uint8), "more": np.zeros((1,), np.uint8)},
     "no 'enhanced' output (it sent ['more', 'other'])"),
    ("serving_default", {"enhanced": np.array([b"text"], dtype=object)}, "'enhanced' holding strings"),
    ("enhance_float", {"enhanced": np.full((1, 64, 48, 1), np.nan, np.float32)}, "NaN or infinite values in 'enhanced'"),
    ("enhance_float", {"enhanced": np.full((1, 64, 48, 1), 7.0, np.float32)}, "values in [7, 7], not in [0, 1]"),
    ("enhance_png", {"png_bytes": np.array([encode_png(np.zeros((2, 2, 1), np.float32))], dtype=object)},
     "a PNG of shape [2, 2, 1] for an image of shape [64, 48, 1]"),
    ("enhance_png", {"png_bytes": np.zeros((1,), np.float32)}, "'png_bytes' of type float"),
]


@pytest.mark.parametrize("rest", [False, True], ids=["grpc", "rest"])
@pytest.mark.parametrize("signature, outputs, message", WRONG_ANSWERS, ids=lambda value: str(value)[:30])
def test_a_wrong_answer_is_one_line_not_a_file(server, monkeypatch, rest, signature, outputs, message):
    _Answering(server, monkeypatch)(outputs)
    with PredictionClient(address(server, rest), model="gray", signature=signature, rest=rest, channels=1) as client:
        with pytest.raises(ServingError) as raised:
            client.enhance(random_image(64, 48))
    text = str(raised.value)
    assert message in text and "\n" not in text and f"server {address(server, rest)} answered model 'gray'" in text


class _CannedRest:
    """An HTTP server answering every request with one fixed body: not TF Serving, but close."""

    def __init__(self, body):
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self):
        self.http.shutdown()


@pytest.mark.parametrize("body, message", [
    (b'{"predictions": []}', "no 'outputs' in its JSON answer (keys: ['predictions'])"),
    (b'"just a string"', "a JSON str instead of an object"),
    (b'{"outputs": {"enhanced": "abc"}}', "'enhanced' holding strings"),
    (b'{"outputs": {"enhanced": [[1, 2], [3]]}}', "outputs that are no tensor"),
    (b'{"outputs": {"enhanced": []}}', "'enhanced' of shape [0] for a request of shape [1, 32, 32, 1]"),
])
def test_a_rest_answer_that_is_not_tf_servings_is_one_line(body, message):
    canned = _CannedRest(body)
    try:
        with PredictionClient(canned.address, model="gray", rest=True, channels=1, retries=0) as client:
            with pytest.raises(ServingError) as raised:
                client.enhance(random_image(32, 32))
    finally:
        canned.close()
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_cli_predict_writes_nothing_for_a_wrong_answer(server, tmp_path, monkeypatch, capsys):
    from ssp_keras.data.io import write_image

    (tmp_path / "in").mkdir()
    write_image(str(tmp_path / "in" / "one.png"), random_image(64, 48), bit_depth=8)
    _Answering(server, monkeypatch)({"enhanced": np.zeros((1, 2, 2, 1), np.uint8)})
    argv = ["predict", "--server", server.grpc_address, "--model", "gray", "--channels", "1",
            str(tmp_path / "in"), "--out", str(tmp_path / "out")]
    assert run_cli(monkeypatch, argv) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("ssp-net predict: error: gRPC server") and "[1, 2, 2, 1]" in error and "\n" not in error
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ tiles share the image's statistics
@pytest.mark.parametrize("signature", ["enhance_float", "serving_default"])
@pytest.mark.parametrize("rest", [False, True], ids=["grpc", "rest"])
def test_remote_tiles_are_normalised_like_local_tiles(server, generators, monkeypatch, rest, signature):
    """A large image in tiles: every remote tile gets the whole image's statistics, so predict and
    enhance agree within a grey level (each tile on its own differs by several)."""
    from ssp_keras.serving import client as client_module

    # (on the 8-bit grid, as an 8-bit file is: serving_default sends 8-bit samples)
    image = eight_bit(random_image(576, 520, seed=12) * np.linspace(0.3, 1.0, 520, dtype=np.float32)[None, :, None])
    # 'Large' made small: tiles of 256 above 0.1 megapixels, as above 4 megapixels in ssp-net enhance.
    monkeypatch.setattr(client_module, "AUTO_TILE_PIXELS", 100_000)
    monkeypatch.setattr(client_module, "DEFAULT_TILE_SIZE", 256)
    with PredictionClient(address(server, rest), model="gray", rest=rest, signature=signature) as client:
        served = client.enhance(image)
    # What ssp-net enhance computes for an image it tiles: tiles normalised with the whole image's statistics.
    local = enhance_array(generators["gray"], image, tile_size=256)
    if signature == "enhance_float":
        assert np.abs(served - local).max() * 255 < 0.05
    else:  # uint8 tiles, blended: within a grey level of the 8-bit output ssp-net enhance writes
        assert np.abs(np.round(served * 255) - np.round(local * 255)).max() <= 1

    monkeypatch.setattr(PredictionClient, "tiles_with_statistics", property(lambda self: False))
    with PredictionClient(address(server, rest), model="gray", rest=rest, signature=signature) as client:
        alone = client.enhance(image)
    assert np.abs(alone - local).mean() * 255 > 2  # each tile on its own: what the statistics fix
