"""Drives a Turnpike gateway with tritonclient's HTTP client, unmodified, as a user would.

Usage: python tritonclient_ocr.py URL API_KEY WORK_DIR
WORK_DIR holds line.png (one rendered text line) and line-x.f32 / line-x.json (the same line as the
recognition model's raw FP32 input, with its shape). Prints one JSON report on stdout; the vitest
file (oip-clients.test.ts) asserts on it. Every call uses the client's defaults unless the name of
the report entry says otherwise (binary inputs and binary outputs are its defaults).
"""

import base64
import json
import os
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

url, key, work = sys.argv[1], sys.argv[2], sys.argv[3]


def auth():
    """The API key, in a fresh dict per call: the client writes Inference-Header-Content-Length
    into the headers dict it is given, so a dict reused after a binary call would send a stale
    header length with the next (JSON) call."""
    return {"Authorization": f"Bearer {key}"}


client = httpclient.InferenceServerClient(url=url.replace("http://", ""))
png = open(os.path.join(work, "line.png"), "rb").read()
x_shape = json.load(open(os.path.join(work, "line-x.json")))["shape"]
x = np.fromfile(os.path.join(work, "line-x.f32"), dtype="<f4").reshape(x_shape)
report = {}


def texts(result, name="text"):
    return [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in result.as_numpy(name).ravel()]


def failure(call):
    """Runs a call that must fail; reports the exception's status and message."""
    try:
        call()
    except InferenceServerException as error:
        return {"status": error.status(), "message": error.message()}
    return None


def image_input(binary):
    element = png if binary else base64.b64encode(png).decode("ascii")
    tensor = httpclient.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([element], dtype=np.object_), binary_data=binary)
    return tensor


def x_input(binary):
    tensor = httpclient.InferInput("x", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    return tensor


def json_outputs():
    return [httpclient.InferRequestedOutput(n, binary_data=False) for n in ("text", "confidence")]


report["live"] = client.is_server_live(headers=auth())
report["ready"] = client.is_server_ready(headers=auth())
report["server"] = client.get_server_metadata(headers=auth())

for target in ("ocr", "read-line"):
    entry = report[target] = {}
    entry["ready"] = client.is_model_ready(target, headers=auth())
    entry["metadata"] = client.get_model_metadata(target, headers=auth())
    entry["config"] = client.get_model_config(target, headers=auth())
    version = entry["metadata"]["versions"][0]
    entry["version_ready"] = client.is_model_ready(target, model_version=version, headers=auth())
    # The client's defaults: binary input data and binary outputs.
    result = client.infer(target, [image_input(True)], headers=auth())
    entry["binary"] = {"text": texts(result), "response": result.get_response()}
    # JSON both ways: the PNG as base64 text (the input is declared binary), JSON outputs.
    result = client.infer(target, [image_input(False)], outputs=json_outputs(), headers=auth())
    entry["json"] = {"text": texts(result), "response": result.get_response()}
    # A versioned infer, and a version that does not exist.
    result = client.infer(target, [image_input(True)], model_version=version, headers=auth())
    entry["versioned"] = texts(result)
    entry["wrong_version"] = failure(
        lambda: client.infer(target, [image_input(True)], model_version="999", headers=auth())
    )
    entry["stats"] = client.get_inference_statistics(target, headers=auth())

# The model's raw tensor `x` (what `inputs` of the metadata lists), binary and JSON.
result = client.infer("ocr", [x_input(True)], headers=auth())
report["ocr"]["x_binary"] = texts(result)
result = client.infer("ocr", [x_input(False)], outputs=json_outputs(), headers=auth())
report["ocr"]["x_json"] = texts(result)
confidence = result.as_numpy("confidence")
report["ocr"]["x_json_confidence"] = [float(c) for c in confidence.ravel()]

# Refusals arrive as the client's exception with the gateway's message, not a crash.
bad = httpclient.InferInput("nope", [1], "FP32")
bad.set_data_from_numpy(np.array([1.0], dtype=np.float32))
report["unknown_input"] = failure(lambda: client.infer("ocr", [bad], headers=auth()))
report["unknown_model"] = failure(lambda: client.get_model_metadata("nothing-here", headers=auth()))
report["no_key"] = failure(lambda: client.get_model_metadata("ocr"))
client.close()
print(json.dumps(report))
