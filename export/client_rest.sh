#!/usr/bin/env bash
# Minimal REST client for SSP-Net on TensorFlow Serving (port 8501): one PNG/JPEG in, one PNG out.
#
#   SERVER=localhost:8501 MODEL=ssp_net export/client_rest.sh input.png enhanced.png
#
# Sends the encoded file as {"b64": ...} to the `enhance_png` signature (any size; a 16-bit PNG
# comes back as a 16-bit PNG) and decodes the base64 PNG of the answer. Needs curl, base64, and
# python3 (to build and read the JSON without jq). Errors come back as {"error": "..."} with an
# HTTP 4xx status; curl --fail-with-body prints them and this script exits non-zero.
#
# Other calls:
#   curl http://$SERVER/v1/models/$MODEL                # version status
#   curl http://$SERVER/v1/models/$MODEL/metadata       # signatures, as `saved_model_cli show`
#   curl -d '{"instances": [[[[0], [255]]]]}' http://$SERVER/v1/models/$MODEL:predict
#                                                       # serving_default: uint8 [N, H, W, C] as JSON
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 INPUT_IMAGE OUTPUT_PNG" >&2
  exit 2
fi
SERVER="${SERVER:-localhost:8501}"
MODEL="${MODEL:-ssp_net}"
INPUT="$1"
OUTPUT="$2"
REQUEST="$(mktemp)"
RESPONSE="$(mktemp)"
trap 'rm -f "$REQUEST" "$RESPONSE"' EXIT

# {"signature_name": "enhance_png", "instances": [{"b64": "<base64 of the file>"}]}
python3 - "$INPUT" > "$REQUEST" <<'PYTHON'
import base64, json, sys
with open(sys.argv[1], "rb") as stream:
    encoded = base64.b64encode(stream.read()).decode("ascii")
json.dump({"signature_name": "enhance_png", "instances": [{"b64": encoded}]}, sys.stdout)
PYTHON

curl --silent --show-error --fail-with-body \
  -H "Content-Type: application/json" \
  --data-binary "@$REQUEST" \
  "http://$SERVER/v1/models/$MODEL:predict" > "$RESPONSE" || { cat "$RESPONSE" >&2; echo >&2; exit 1; }

# {"predictions": [{"b64": "<base64 PNG>"}]}
python3 - "$RESPONSE" "$OUTPUT" <<'PYTHON'
import base64, json, sys
with open(sys.argv[1]) as stream:
    prediction = json.load(stream)["predictions"][0]
with open(sys.argv[2], "wb") as stream:
    stream.write(base64.b64decode(prediction["b64"]))
PYTHON
echo "$INPUT -> $OUTPUT"
