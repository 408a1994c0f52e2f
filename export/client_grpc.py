#!/usr/bin/env python3
"""Minimal gRPC client for SSP-Net on TensorFlow Serving (port 8500): one image in, one out.

Needs only ``tensorflow-serving-api`` (which brings grpcio and tensorflow), numpy and Pillow::

    python export/client_grpc.py --server localhost:8500 input.png enhanced.png

It sends the image as uint8 ``[1, H, W, C]`` to the ``serving_default`` signature (any size: the
model pads and crops inside) and writes the uint8 result. The project's own client does the same
with retries, tiling of huge images and folders: ``ssp-net predict --server localhost:8500 ...``.
"""

import argparse

import grpc
import numpy as np
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--server", default="localhost:8500")
    parser.add_argument("--model", default="ssp_net")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=1, help="the model's channels")
    parser.add_argument("--timeout", type=float, default=60.0, help="deadline in seconds")
    args = parser.parse_args()

    with Image.open(args.input) as image:
        pixels = np.asarray(image.convert("L" if args.channels == 1 else "RGB"), dtype=np.uint8)
    pixels = pixels.reshape(pixels.shape[0], pixels.shape[1], args.channels)

    request = predict_pb2.PredictRequest()
    request.model_spec.name = args.model
    request.model_spec.signature_name = "serving_default"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(pixels[np.newaxis]))

    # gRPC's default limit is 4 MiB per message; a 4000x4000 gray image is 16 MB.
    limit = 256 * 1024 * 1024
    options = [("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)]
    with grpc.insecure_channel(args.server, options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=args.timeout)
        except grpc.RpcError as error:
            raise SystemExit(f"{args.server}: {error.code().name}: {error.details()}")

    enhanced = tf.make_ndarray(response.outputs["enhanced"])[0]
    Image.fromarray(enhanced[:, :, 0] if args.channels == 1 else enhanced).save(args.output)
    print(f"{args.input} -> {args.output} (model version {response.model_spec.version.value})")


if __name__ == "__main__":
    main()
