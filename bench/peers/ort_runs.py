"""Runs the OCR recognition model in PyPI onnxruntime (KServe's peer's session, by default exactly
as bench/peers/kserve_ocr.py opens it) on request, for bench/ort-py-compare.ts: each stdin line
"RUNS GAP_MS" makes RUNS runs of a [BATCH,3,48,320] input, each followed by GAP_MS idle, and prints
one JSON line with each run's milliseconds and the CPU of the whole round.

    python ort_runs.py --model-file REC.onnx [--threads 2] [--batch 1] [--config key=value ...]
"""
import argparse
import json
import sys
import time

import numpy as np
import onnxruntime as ort

parser = argparse.ArgumentParser()
parser.add_argument("--model-file", required=True)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--batch", type=int, default=1)
parser.add_argument("--config", action="append", default=[])  # session config entries, key=value
args = parser.parse_args()

options = ort.SessionOptions()
options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
for entry in args.config:
    key, value = entry.split("=", 1)
    options.add_session_config_entry(key, value)
session = ort.InferenceSession(args.model_file, options, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
x = (np.random.default_rng(1).random((args.batch, 3, 48, 320), dtype=np.float32) - 0.5).astype(np.float32)
for _ in range(5):
    session.run(None, {name: x})
print(json.dumps({"ready": True, "version": ort.__version__}), flush=True)

for line in sys.stdin:
    runs, gap_ms = (float(v) for v in line.split())
    latencies = []
    cpu_before = time.process_time()
    for _ in range(int(runs)):
        started = time.perf_counter()
        session.run(None, {name: x})
        latencies.append((time.perf_counter() - started) * 1000)
        if gap_ms > 0:
            time.sleep(gap_ms / 1000)
    cpu_ms = (time.process_time() - cpu_before) * 1000
    print(json.dumps({"latencies": latencies, "cpuMs": cpu_ms}), flush=True)
