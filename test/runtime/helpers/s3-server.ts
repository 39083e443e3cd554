/**
 * A real S3-compatible server for the model-source tests: moto's standalone server from PyPI (the
 * virtual environment hack/s3-server.sh creates), on loopback, with signature checks switched on
 * once the bucket, the object and an IAM user's access key exist.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";

const repoRoot = join(import.meta.dirname, "../../..");

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An unchecked signature still tells moto which service a request is for. */
const anyAuth = (service: string) =>
  `AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/${service}/aws4_request, ` +
  "SignedHeaders=host, Signature=00";

export class S3Server {
  private constructor(
    private readonly child: ChildProcess,
    readonly endpoint: string,
  ) {}

  static async start(): Promise<S3Server> {
    const { stdout } = await promisify(execFile)("bash", [join(repoRoot, "hack/s3-server.sh")], {
      timeout: 300_000,
    });
    const bin = stdout.trim().split("\n").at(-1)!;
    const port = await freePort();
    const child = spawn(bin, ["-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
    const server = new S3Server(child, `http://127.0.0.1:${port}`);
    for (let i = 0; ; i++) {
      try {
        await fetch(`${server.endpoint}/moto-api/`);
        return server;
      } catch (error) {
        if (i > 150 || child.exitCode !== null)
          throw new Error("moto_server did not start", { cause: error });
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private async iam(params: Record<string, string>): Promise<string> {
    const res = await fetch(this.endpoint, {
      method: "POST",
      headers: { authorization: anyAuth("iam"), "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ ...params, Version: "2010-05-08" }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`IAM ${params.Action}: ${res.status} ${text}`);
    return text;
  }

  /** An IAM user allowed to read objects, and its access key. */
  async readerKeys(user: string): Promise<{ accessKeyId: string; secretAccessKey: string }> {
    await this.iam({ Action: "CreateUser", UserName: user });
    const policy = {
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Action: "s3:GetObject", Resource: "*" }],
    };
    await this.iam({
      Action: "PutUserPolicy",
      UserName: user,
      PolicyName: "read",
      PolicyDocument: JSON.stringify(policy),
    });
    const xml = await this.iam({ Action: "CreateAccessKey", UserName: user });
    const field = (name: string) => new RegExp(`<${name}>([^<]+)</${name}>`).exec(xml)![1]!;
    return { accessKeyId: field("AccessKeyId"), secretAccessKey: field("SecretAccessKey") };
  }

  /** Creates `bucket` (if needed) and puts `body` at `key`. */
  async put(bucket: string, key: string, body: Uint8Array): Promise<void> {
    const send = (path: string, payload?: Uint8Array) =>
      fetch(`${this.endpoint}/${path}`, {
        method: "PUT",
        headers: { authorization: anyAuth("s3"), "content-type": "application/octet-stream" },
        ...(payload ? { body: payload } : {}),
      });
    await send(bucket);
    const res = await send(`${bucket}/${key}`, body);
    if (!res.ok) throw new Error(`PUT ${bucket}/${key}: ${res.status} ${await res.text()}`);
  }

  /** From now on every request must carry a valid signature of a known access key. */
  async enforceSignatures(): Promise<void> {
    const res = await fetch(`${this.endpoint}/moto-api/reset-auth`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "0",
    });
    if (!res.ok) throw new Error(`reset-auth: ${res.status} ${await res.text()}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill("SIGTERM");
    await once(this.child, "exit");
  }
}
