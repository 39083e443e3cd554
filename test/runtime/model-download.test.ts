// https:// and s3:// model sources against real servers: a loopback HTTPS server (own CA) and a real
// S3-compatible server (moto's, from PyPI) that checks signatures. The worker downloads the model
// into its download directory, verifies the sha256 before loading, and serves an inference; a wrong
// digest, a missing object and refused credentials fail with the reason the operator reports.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { terminationMessage } from "../../runtime/shared/run-role.js";
import { decodeTensor, encodeTensor, toJsonData } from "../../runtime/shared/tensors.js";
import { downloadModel, ModelSourceError } from "../../runtime/worker/model-download/download-model.js";
import { signS3Get } from "../../runtime/worker/model-download/s3-signature.js";
import { startWorker } from "../../runtime/worker/worker.js";
import { tinyModel } from "../fixtures/tiny-models.js";
import { uniqueName } from "../harness/services.js";
import * as fx from "./helpers/worker-fixtures.js";
import { S3Server } from "./helpers/s3-server.js";
import { logger } from "../../runtime/shared/logger.js";

const MODEL = Buffer.from(tinyModel("add"));
const SHA256 = createHash("sha256").update(MODEL).digest("hex");
const WRONG = "0".repeat(64);
const log = logger("model-download-test");

describe("the S3 signature", () => {
  it("matches the GET Object example of AWS's S3 documentation", () => {
    const headers = signS3Get(
      {
        host: "examplebucket.s3.amazonaws.com",
        path: "/test.txt",
        region: "us-east-1",
        headers: { range: "bytes=0-9" },
      },
      { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" },
      new Date("2013-05-24T00:00:00Z"),
    );
    expect(headers.authorization).toBe(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," +
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date," +
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
  });
});

/** Runs the `add` model from `uri` in a real worker and checks one inference: y = x + [1, 2, 3, 4]. */
async function serveAndInfer(uri: string, env: Record<string, string>, ca?: string): Promise<void> {
  const prefix = uniqueName("w-dl");
  const config = fx.runtimeConfig(prefix, { models: [{ name: "add", uri }] });
  const worker = await startWorker({ env: fx.workerEnv(env), config, model: "add", ...(ca ? { ca } : {}) });
  const broker = await fx.BrokerClient.connect(prefix);
  try {
    await worker.ready;
    const x = encodeTensor({
      name: "x",
      datatype: "FP32",
      shape: [1, 4],
      data: new Float32Array([10, 10, 10, 10]),
    });
    await broker.publishTask(
      "add",
      fx.makeTask({ kind: "model", name: "add" }, [{ step: "add", model: "add" }], [x]),
    );
    const [result] = await broker.results(1);
    expect(result?.status).toBe("succeeded");
    expect(toJsonData(decodeTensor(result!.outputs!.find((o) => o.name === "y")!))).toEqual([11, 12, 13, 14]);
  } finally {
    await worker.close();
    await broker.cleanup(["add"]);
  }
}

/** The error a worker's start fails with. */
async function startFailure(uri: string, env: Record<string, string>, ca?: string): Promise<unknown> {
  const config = fx.runtimeConfig(uniqueName("w-dl"), { models: [{ name: "add", uri }] });
  const worker = await startWorker({ env: fx.workerEnv(env), config, model: "add", ...(ca ? { ca } : {}) });
  const error = await worker.ready.then(
    () => new Error("the worker started"),
    (e: unknown) => e,
  );
  await worker.close();
  return error;
}

describe("an https:// model", () => {
  let server: Server;
  let base: string;
  let ca: string;
  const hits = new Map<string, number>();

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "turnpike-https-"));
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        "-days",
        "2",
      ].concat(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]),
      { cwd: dir, stdio: "ignore" },
    );
    ca = readFileSync(join(dir, "cert.pem"), "utf8");
    server = createServer({ key: readFileSync(join(dir, "key.pem")), cert: ca }, (req, res) => {
      const path = req.url ?? "";
      hits.set(path, (hits.get(path) ?? 0) + 1);
      if (path === "/models/add.onnx") return void res.end(MODEL);
      // Fails twice, then serves: retried with backoff.
      if (path === "/flaky/add.onnx" && hits.get(path)! > 2) return void res.end(MODEL);
      if (path === "/flaky/add.onnx") return void res.writeHead(503).end("busy");
      if (path === "/moved/add.onnx") return void res.writeHead(302, { location: "/models/add.onnx" }).end();
      res.writeHead(404).end("no such file");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  afterAll(() => new Promise<void>((resolve) => server?.close(() => resolve())));

  it("is downloaded, verified, loaded and serves an inference", async () => {
    const dir = mkdtempSync(join(tmpdir(), "turnpike-dl-"));
    await serveAndInfer(
      `${base}/models/add.onnx`,
      { TURNPIKE_MODEL_SHA256: SHA256, TURNPIKE_MODEL_DOWNLOAD_DIR: dir },
      ca,
    );
    expect(readdirSync(dir)).toEqual([`${SHA256.slice(0, 16)}-add.onnx`]);
  }, 60_000);

  it("is downloaded once per pod: a restarted container finds the verified file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "turnpike-dl-"));
    const uri = `${base}/moved/add.onnx`;
    const first = await downloadModel({ uri, sha256: SHA256, dir, log, ca });
    const before = hits.get("/moved/add.onnx");
    expect(await downloadModel({ uri, sha256: SHA256, dir, log, ca })).toBe(first);
    expect(hits.get("/moved/add.onnx")).toBe(before);
    // A file that does not match (a previous, cut-off run) is fetched again.
    writeFileSync(first, "truncated");
    await downloadModel({ uri, sha256: SHA256, dir, log, ca });
    expect(readFileSync(first)).toEqual(MODEL);
  });

  it("outlasts transient failures with bounded retries", async () => {
    const dir = mkdtempSync(join(tmpdir(), "turnpike-dl-"));
    const path = await downloadModel({ uri: `${base}/flaky/add.onnx`, sha256: SHA256, dir, log, ca });
    expect(readFileSync(path)).toEqual(MODEL);
    expect(hits.get("/flaky/add.onnx")).toBe(3);
  });

  it("with the wrong sha256 is refused before loading, and nothing is kept", async () => {
    const dir = mkdtempSync(join(tmpdir(), "turnpike-dl-"));
    const error = await startFailure(
      `${base}/models/add.onnx`,
      { TURNPIKE_MODEL_SHA256: WRONG, TURNPIKE_MODEL_DOWNLOAD_DIR: dir },
      ca,
    );
    expect(error).toBeInstanceOf(ModelSourceError);
    expect((error as ModelSourceError).reason).toBe("ModelChecksumMismatch");
    expect(terminationMessage(error)).toBe(
      `ModelChecksumMismatch: model uri ${base}/models/add.onnx: downloaded ${MODEL.length} bytes with ` +
        `sha256 ${SHA256}, but spec.model.sha256 is ${WRONG}; the file was not loaded`,
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it("that is not there fails with the HTTP status, without retrying", async () => {
    const error = await startFailure(`${base}/missing/add.onnx`, { TURNPIKE_MODEL_SHA256: SHA256 }, ca);
    expect(terminationMessage(error)).toBe(
      `ModelDownloadFailed: model uri ${base}/missing/add.onnx: HTTP 404 Not Found`,
    );
    expect(hits.get("/missing/add.onnx")).toBe(1);
  });

  it("from a server whose certificate is not trusted fails", async () => {
    const error = await downloadModel({
      uri: `${base}/models/add.onnx`,
      sha256: SHA256,
      dir: mkdtempSync(join(tmpdir(), "turnpike-dl-")),
      log,
      attempts: 1,
    }).catch((e: unknown) => e);
    expect(terminationMessage(error)).toMatch(/^ModelDownloadFailed: .*self-signed certificate/);
  });
});

describe("an s3:// model on an S3-compatible server that checks signatures", () => {
  let s3: S3Server;
  let keys: { accessKeyId: string; secretAccessKey: string };
  let env: Record<string, string>;

  beforeAll(async () => {
    s3 = await S3Server.start();
    keys = await s3.readerKeys("model-reader");
    await s3.put("models", "ocr/add v1.onnx", MODEL);
    await s3.enforceSignatures();
    env = {
      AWS_ENDPOINT_URL: s3.endpoint,
      AWS_REGION: "eu-west-1",
      AWS_ACCESS_KEY_ID: keys.accessKeyId,
      AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
    };
  }, 360_000);

  afterAll(async () => {
    await s3?.stop();
  });

  it("is downloaded with the Secret's credentials and serves an inference", async () => {
    const dir = mkdtempSync(join(tmpdir(), "turnpike-dl-"));
    await serveAndInfer("s3://models/ocr/add v1.onnx", {
      ...env,
      TURNPIKE_MODEL_SHA256: SHA256,
      TURNPIKE_MODEL_DOWNLOAD_DIR: dir,
    });
    expect(existsSync(join(dir, `${SHA256.slice(0, 16)}-add_v1.onnx`))).toBe(true);
  }, 60_000);

  it("with a wrong secret key fails with S3's reason", async () => {
    const error = await startFailure("s3://models/ocr/add v1.onnx", {
      ...env,
      AWS_SECRET_ACCESS_KEY: "not-the-secret",
      TURNPIKE_MODEL_SHA256: SHA256,
    });
    expect(terminationMessage(error)).toMatch(
      /^ModelDownloadFailed: model uri s3:\/\/models\/ocr\/add v1\.onnx: HTTP 403 .*\(SignatureDoesNotMatch\)$/,
    );
  });

  it("that is not in the bucket fails with NoSuchKey", async () => {
    const error = await startFailure("s3://models/ocr/missing.onnx", {
      ...env,
      TURNPIKE_MODEL_SHA256: SHA256,
    });
    expect(terminationMessage(error)).toMatch(/^ModelDownloadFailed: .*HTTP 404 .*\(NoSuchKey\)$/);
  });

  it("with the wrong sha256 is refused", async () => {
    const error = await startFailure("s3://models/ocr/add v1.onnx", { ...env, TURNPIKE_MODEL_SHA256: WRONG });
    expect((error as ModelSourceError).reason).toBe("ModelChecksumMismatch");
  });
});
