"""The KServe peer of the benchmark: PP-OCRv4 recognition in KServe's Python ModelServer, written
the way a new user would (a Model subclass, onnxruntime with 2 threads, greedy CTC decoding to
text, no batching). Takes an Open Inference Protocol v2 body with input `x` FP32 [1,3,48,W] and
answers the decoded text as a BYTES output. Run by bench/sections/kserve.ts:

    python kserve_ocr.py --model-file REC.onnx --dictionary KEYS.txt --http_port PORT --enable_grpc false
"""
import argparse
import uuid

import numpy as np
import onnxruntime as ort
import uvicorn
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer, model_server
from kserve.protocol.rest import server as rest_server


class OcrRecognition(Model):
    def __init__(self, name: str, model_file: str, dictionary: str, threads: int = 2):
        super().__init__(name)
        self.model_file, self.dictionary, self.threads = model_file, dictionary, threads
        self.load()

    def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
        self.session = ort.InferenceSession(self.model_file, options, providers=["CPUExecutionProvider"])
        with open(self.dictionary, encoding="utf-8") as f:
            # PaddleOCR's CTC classes: blank, the dictionary, then a space.
            self.classes = [""] + [line.rstrip("\r\n") for line in f] + [" "]
        self.ready = True
        return self.ready

    def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        x = payload.get_input_by_name("x").as_numpy().astype(np.float32, copy=False)
        (probabilities,) = self.session.run(None, {self.session.get_inputs()[0].name: x})
        texts = []
        for best in probabilities.argmax(axis=2):  # greedy CTC: collapse repeats, drop blanks
            kept = best[np.insert(best[1:] != best[:-1], 0, True)]
            texts.append("".join(self.classes[i] for i in kept if i != 0))
        output = InferOutput(name="text", shape=[len(texts)], datatype="BYTES", data=texts)
        return InferResponse(response_id=payload.id or str(uuid.uuid4()), model_name=self.name, infer_outputs=[output])


class LoopbackConfig(uvicorn.Config):
    """KServe binds 0.0.0.0; the benchmark serves on loopback only."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "host": "127.0.0.1"})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model-file", required=True)
    parser.add_argument("--dictionary", required=True)
    parser.add_argument("--threads", type=int, default=2)  # 1 in the benchmark's dedicated-cores mode
    args, _ = parser.parse_known_args()
    rest_server.uvicorn.Config = LoopbackConfig
    model = OcrRecognition(args.model_name or "ocr", args.model_file, args.dictionary, args.threads)
    ModelServer().start([model])
