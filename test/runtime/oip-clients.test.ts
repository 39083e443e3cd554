// A real third-party Open Inference Protocol v2 client, unmodified: tritonclient's HTTP client from
// PyPI (in the virtual environment hack/python-clients.sh creates) against the real gateway, the real
// worker serving PP-OCRv4 recognition and the real collector. Metadata, config, readiness, JSON and
// binary infer both ways, versions, statistics and refusals, on the OCR model and the OCR pipeline,
// with the decoded text checked exactly.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recognitionInput } from "../../runtime/shared/images/ocr-preprocess.js";
import { decodePng } from "../../runtime/shared/images/decode-png.js";
import { startWorker, type Worker } from "../../runtime/worker/worker.js";
import { repoRoot } from "../harness/kube.js";
import { gatewayFixture, KEYS, standardTenants, type GatewayFixture } from "./helpers/gateway-fixture.js";
import { OCR_URI, renderLinePng, workerEnv } from "./helpers/worker-fixtures.js";

const execFileAsync = promisify(execFile);
const LINE = "Invoice 12345";

// The report tritonclient_ocr.py prints, loosely typed.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Report = Record<string, any>;

let fx: GatewayFixture;
let worker: Worker;
let work: string;
let report: Report;

beforeAll(async () => {
  const { stdout } = await execFileAsync("bash", [join(repoRoot, "hack/python-clients.sh")], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const python = stdout.trim().split("\n").at(-1)!;
  fx = await gatewayFixture({
    config: {
      models: [
        {
          name: "ocr",
          uri: OCR_URI,
          task: "ocr-recognition",
          tokens: { mode: "characters", maxOutputTokens: 64 },
          batching: { maxBatchSize: 4, maxDelayMs: 5 },
        },
      ],
      pipelines: [
        {
          name: "read-line",
          steps: [
            { name: "decode", processor: "image-to-tensor", parameters: { height: "48" } },
            { name: "rec", model: "ocr" },
          ],
        },
      ],
      tenants: [{ name: "acme", models: [] }],
    },
    tenants: standardTenants().filter((t) => t.name === "acme"),
    queues: { ocr: {} },
    collector: true,
  });
  worker = await startWorker({ env: workerEnv(), config: fx.config, model: "ocr" });
  await worker.ready;

  work = mkdtempSync(join(tmpdir(), "turnpike-oip-"));
  const png = renderLinePng(LINE);
  const x = recognitionInput(decodePng(png, 0));
  writeFileSync(join(work, "line.png"), png);
  writeFileSync(join(work, "line-x.f32"), Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength));
  writeFileSync(join(work, "line-x.json"), JSON.stringify({ shape: x.dims }));
  const script = join(repoRoot, "test/runtime/oip-clients/tritonclient_ocr.py");
  const run = await execFileAsync(python, [script, fx.url, KEYS.acme, work], {
    maxBuffer: 64 * 1024 * 1024,
    timeout: 120_000,
  });
  report = JSON.parse(run.stdout) as Report;
}, 300_000);

afterAll(async () => {
  await worker?.close();
  await fx?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("tritonclient (HTTP) against the gateway", () => {
  it("reads health, server metadata with the binary extension, readiness and model metadata", () => {
    expect(report.live).toBe(true);
    expect(report.ready).toBe(true);
    expect(report.server.extensions).toEqual(expect.arrayContaining(["binary_tensor_data", "statistics"]));
    for (const target of ["ocr", "read-line"]) {
      expect(report[target].ready).toBe(true);
      expect(report[target].version_ready).toBe(true);
      expect(report[target].metadata.versions).toEqual(["1"]);
    }
    expect(report.ocr.metadata.inputs).toEqual([
      expect.objectContaining({ name: "x", datatype: "FP32", shape: [-1, 3, 48, -1] }),
    ]);
    expect(report["read-line"].metadata.inputs).toEqual([
      expect.objectContaining({ name: "image", datatype: "BYTES", shape: [-1] }),
    ]);
    expect(report.ocr.config).toMatchObject({
      name: "ocr",
      max_batch_size: 4,
      input: [{ name: "x", data_type: "TYPE_FP32", dims: [3, 48, -1] }],
      output: [
        { name: "text", data_type: "TYPE_STRING", dims: [] },
        { name: "confidence", data_type: "TYPE_FP32", dims: [] },
      ],
    });
  });

  it("infers with the client's defaults (binary inputs and outputs) and reads the line exactly", () => {
    for (const target of ["ocr", "read-line"]) {
      expect(report[target].binary.text).toEqual([LINE]);
      const text = report[target].binary.response.outputs.find((o: Report) => o.name === "text");
      expect(text.parameters.binary_data_size).toBe(4 + LINE.length);
      expect(text.data).toBeUndefined();
    }
  });

  it("infers with JSON both ways and reads the line exactly", () => {
    for (const target of ["ocr", "read-line"]) {
      expect(report[target].json.text).toEqual([LINE]);
      const text = report[target].json.response.outputs.find((o: Report) => o.name === "text");
      expect(text.data).toEqual([LINE]);
    }
  });

  it("sends the model's raw FP32 tensor x, binary and JSON", () => {
    expect(report.ocr.x_binary).toEqual([LINE]);
    expect(report.ocr.x_json).toEqual([LINE]);
    expect(report.ocr.x_json_confidence[0]).toBeGreaterThan(0.8);
  });

  it("addresses the current version, and gets 404 with a readable message for another", () => {
    for (const target of ["ocr", "read-line"]) {
      expect(report[target].versioned).toEqual([LINE]);
      expect(report[target].wrong_version).toEqual({
        status: "404",
        message: `${target} has no version 999; the version served is 1`,
      });
    }
  });

  it("reads statistics from the gateway's own metrics", () => {
    const [ocr] = report.ocr.stats.model_stats;
    expect(ocr).toMatchObject({ name: "ocr", version: "1" });
    // Binary, JSON and versioned infers so far (the x infers came after this call), none failed.
    expect(ocr.inference_stats.success.count).toBe(3);
    expect(ocr.inference_stats.success.ns).toBeGreaterThan(0);
    expect(ocr.inference_stats.fail.count).toBe(1); // the wrong version
    expect(report["read-line"].stats.model_stats[0].inference_stats.success.count).toBe(3);
  });

  it("turns refusals into the client's exception with the gateway's message", () => {
    expect(report.unknown_input).toEqual({
      status: "400",
      message: "ocr accepts {image BYTES [-1]} or {x FP32 [-1, 3, 48, -1]}; got {nope FP32 [1]}",
    });
    expect(report.unknown_model).toEqual({
      status: "404",
      message: "there is no model or pipeline named nothing-here",
    });
    expect(report.no_key.status).toBe("401");
  });
});
