// An s3:// model under the real controllers, the real operator and the node agent (what `make run`
// runs): its worker pod downloads the model from a real S3-compatible server (moto, signatures
// checked) into its emptyDir with the credentials of a Secret, serves a request, and a wrong
// sha256 makes the model Degraded with the reason the new pod exits with while the old one serves.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubectlOk } from "../harness/kube.js";
import { tinyModel } from "../fixtures/tiny-models.js";
import { eventually } from "../operator/helpers/operator-process.js";
import { S3Server } from "../runtime/helpers/s3-server.js";
import { startLocalCluster, type LocalCluster } from "./helpers/cluster.js";
import { modelEnv, type ModelEnv } from "./helpers/model-env.js";
import { inferSync } from "./helpers/requests.js";

const MODEL = Buffer.from(tinyModel("echo"));
const SHA256 = createHash("sha256").update(MODEL).digest("hex");

let cluster: LocalCluster | undefined;
let env: ModelEnv | undefined;
let s3: S3Server | undefined;

const model = (sha256: string) => ({
  model: {
    uri: "s3://models/tiny/echo.onnx",
    sha256,
    s3: { endpoint: s3!.endpoint, region: "eu-west-1", secretRef: { name: "s3-reader" } },
    inputs: [{ name: "x", datatype: "FP32", shape: [-1, 4] }],
    outputs: [{ name: "y", datatype: "FP32", shape: [-1, 4] }],
  },
});

beforeAll(async () => {
  cluster = await startLocalCluster({ keda: false });
  // A model from a file first (the environment needs one); the s3:// one is applied below.
  env = await modelEnv("as-dl", { name: "steady", scaling: { minReplicas: 1, maxReplicas: 1 } });
  s3 = await S3Server.start();
  const keys = await s3.readerKeys("model-reader");
  await s3.put("models", "tiny/echo.onnx", MODEL);
  await s3.enforceSignatures();
  const secret = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "s3-reader", namespace: env.ns },
    stringData: { AWS_ACCESS_KEY_ID: keys.accessKeyId, AWS_SECRET_ACCESS_KEY: keys.secretAccessKey },
  };
  await kubectlOk(["apply", "-f", "-"], JSON.stringify(secret));
}, 400_000);

afterAll(async () => {
  await env?.cleanup().catch(() => undefined);
  await cluster?.stop();
  await s3?.stop();
}, 180_000);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const condition = async (type: string): Promise<any> =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  (await env!.get("inferencemodel", "echo-s3"))?.status?.conditions?.find((c: any) => c.type === type);

describe("an s3:// model on the local cluster", () => {
  it("is downloaded by its worker pod with the Secret's credentials and serves a request", async () => {
    await env!.applyModel("echo-s3", { minReplicas: 1, maxReplicas: 1 }, model(SHA256));
    await eventually(
      "the s3:// model Ready",
      async () => ((await condition("Ready"))?.status === "True" ? true : undefined),
      240_000,
    );
    const answer = await eventually(
      "an answer from the downloaded model",
      async () => {
        const a = await inferSync(env!, "echo-s3", 7, 20_000).catch(() => undefined);
        return a?.status === 200 ? a : undefined;
      },
      60_000,
    );
    expect(answer.seq).toBe(7);
  }, 400_000);

  it("with a wrong sha256 is Degraded with ModelChecksumMismatch while the old pod still serves", async () => {
    await env!.applyModel("echo-s3", { minReplicas: 1, maxReplicas: 1 }, model("0".repeat(64)));
    const degraded = await eventually(
      "Degraded with the new pod's reason",
      async () => {
        const c = await condition("Degraded");
        return c?.reason === "ModelChecksumMismatch" ? c : undefined;
      },
      240_000,
    );
    expect(degraded.status).toBe("True");
    expect(degraded.message).toContain(`downloaded ${MODEL.length} bytes with sha256 ${SHA256}`);
    expect((await condition("Ready"))?.status).toBe("True");
  }, 400_000);
});
