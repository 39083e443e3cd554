/**
 * Downloads an `https://` or `s3://` model once per pod into a directory (the pod's emptyDir):
 * streamed to a temporary file while its sha256 is computed, renamed into place only when the
 * digest matches, and skipped when a file with that digest is already there (a restarted
 * container). Transient failures (network, 5xx, 429, a cut-off body) are retried with backoff a
 * bounded number of times; a missing object, refused credentials or a wrong digest are not.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { get as httpGet, type IncomingMessage } from "node:http";
import { get as httpsGet } from "node:https";
import { basename, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { backoffMs, sleep } from "../../shared/backoff.js";
import type { Logger } from "../../shared/logger.js";
import { remoteRequest } from "./remote-source.js";

/** Why a model could not be fetched; the worker's termination message starts with it. */
export type ModelSourceReason = "ModelDownloadFailed" | "ModelChecksumMismatch";

/** A download that failed for good, with the status reason the operator reports. */
export class ModelSourceError extends Error {
  readonly reason: ModelSourceReason;
  readonly retryable: boolean;
  constructor(
    reason: ModelSourceReason,
    message: string,
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "ModelSourceError";
    this.reason = reason;
    this.retryable = options.retryable ?? false;
  }
}

export interface DownloadOptions {
  uri: string;
  /** Expected sha256 of the file, 64 hex digits. */
  sha256: string;
  /** Directory the file is kept in (created if missing). */
  dir: string;
  log: Logger;
  /** Where S3 settings and credentials come from (AWS_*); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Attempts before giving up on transient failures; default 5. */
  attempts?: number;
  /** Extra trusted CA certificates (PEM) for https; NODE_EXTRA_CA_CERTS works too. */
  ca?: string;
  /** A connection or a body idle this long fails the attempt; default 60 s. */
  idleTimeoutMs?: number;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** sha256 of a local file, hex. */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}

/** The local path of the verified model file; downloads it unless it is already there. */
export async function downloadModel(options: DownloadOptions): Promise<string> {
  const sha256 = options.sha256.toLowerCase();
  if (!SHA256.test(sha256)) {
    throw new ModelSourceError(
      "ModelDownloadFailed",
      `model uri ${options.uri}: sha256 must be 64 hex digits`,
    );
  }
  const name = basename(options.uri.replace(/[?#].*$/, "")).replace(/[^A-Za-z0-9._-]/g, "_") || "model";
  const target = join(options.dir, `${sha256.slice(0, 16)}-${name}`);
  mkdirSync(options.dir, { recursive: true });
  if (existsSync(target) && (await fileSha256(target)) === sha256) {
    options.log.info({ path: target }, "model already downloaded and verified");
    return target;
  }
  const attempts = options.attempts ?? 5;
  for (let attempt = 0; ; attempt++) {
    try {
      await fetchOnce(options, sha256, target);
      return target;
    } catch (error) {
      const final = !(error instanceof ModelSourceError) || !error.retryable || attempt + 1 >= attempts;
      if (final) {
        if (error instanceof ModelSourceError && error.retryable) {
          throw new ModelSourceError(error.reason, `${error.message} (gave up after ${attempts} attempts)`, {
            cause: error.cause,
          });
        }
        throw error;
      }
      const delay = backoffMs(attempt + 3);
      options.log.warn(
        { err: error, attempt: attempt + 1, retryInMs: delay },
        "model download failed; retrying",
      );
      await sleep(delay);
    }
  }
}

/** One GET into `<target>.partial`, verified, then renamed to `target`. */
async function fetchOnce(options: DownloadOptions, sha256: string, target: string): Promise<void> {
  const request = remoteRequest(options.uri, options.env ?? process.env);
  const partial = `${target}.partial`;
  const started = Date.now();
  const res = await get(request.url, request.headers(), options);
  try {
    if (res.statusCode !== 200) throw await httpError(options.uri, res);
    const expected = Number(res.headers["content-length"] ?? NaN);
    const hash = createHash("sha256");
    let bytes = 0;
    res.setTimeout(options.idleTimeoutMs ?? 60_000, () => res.destroy(new Error("no data for too long")));
    await pipeline(
      res,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          hash.update(chunk);
          bytes += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(partial),
    );
    if (Number.isFinite(expected) && bytes !== expected) {
      throw new ModelSourceError(
        "ModelDownloadFailed",
        `model uri ${options.uri}: the body ended after ${bytes} of ${expected} bytes`,
        { retryable: true },
      );
    }
    const actual = hash.digest("hex");
    if (actual !== sha256) {
      throw new ModelSourceError(
        "ModelChecksumMismatch",
        `model uri ${options.uri}: downloaded ${bytes} bytes with sha256 ${actual}, but spec.model.sha256 is ` +
          `${sha256}; the file was not loaded`,
      );
    }
    renameSync(partial, target);
    options.log.info(
      { uri: options.uri, bytes, seconds: (Date.now() - started) / 1000 },
      "model downloaded and verified",
    );
  } catch (error) {
    rmSync(partial, { force: true });
    if (error instanceof ModelSourceError) throw error;
    throw new ModelSourceError(
      "ModelDownloadFailed",
      `model uri ${options.uri}: ${(error as Error).message}`,
      {
        cause: error,
        retryable: true,
      },
    );
  } finally {
    res.destroy();
  }
}

/** GET `url`, following up to five redirects; resolves with the response once its headers are in. */
function get(
  url: string,
  headers: Record<string, string>,
  options: DownloadOptions,
  hops = 0,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === "https:" ? httpsGet : httpGet;
    const req = send(target, { headers, ...(options.ca ? { ca: options.ca } : {}) }, (res) => {
      const location = res.headers.location;
      if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && location && hops < 5) {
        res.resume();
        // A redirect (e.g. to a CDN or a presigned URL) goes without the signed headers.
        get(new URL(location, target).href, {}, options, hops + 1).then(resolve, reject);
        return;
      }
      resolve(res);
    });
    req.setTimeout(options.idleTimeoutMs ?? 60_000, () => req.destroy(new Error("no response for too long")));
    req.on("error", (cause: Error) =>
      reject(
        new ModelSourceError("ModelDownloadFailed", `model uri ${options.uri}: ${cause.message}`, {
          cause,
          retryable: true,
        }),
      ),
    );
  });
}

/** A non-200 answer: transient (5xx, 429) or final, with S3's error code when there is one. */
async function httpError(uri: string, res: IncomingMessage): Promise<ModelSourceError> {
  let body = "";
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (body.length < 4096) body += chunk.toString("utf8");
  }
  const code = /<Code>([^<]+)<\/Code>/.exec(body)?.[1];
  const status = res.statusCode ?? 0;
  const retryable = status >= 500 || status === 429 || status === 408;
  return new ModelSourceError(
    "ModelDownloadFailed",
    `model uri ${uri}: HTTP ${status} ${res.statusMessage ?? ""}`.trimEnd() + (code ? ` (${code})` : ""),
    { retryable },
  );
}
