/**
 * AWS Signature Version 4 for one S3 GET: the `Authorization`, `x-amz-date` and
 * `x-amz-content-sha256` headers that let a worker download an object with the credentials of a
 * Secret. Only what a GET of a whole object needs: no query string, an empty body, no chunking.
 * Checked against the GET Object example of AWS's S3 documentation (test/runtime) and against a
 * real S3-compatible server.
 */
import { createHash, createHmac } from "node:crypto";

/** Credentials as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and (optionally) AWS_SESSION_TOKEN hold them. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** What is signed. `path` is the URL's path exactly as sent (already percent-encoded). */
export interface S3Get {
  host: string;
  path: string;
  region: string;
  /** Extra headers to sign and send (e.g. `range`), lower-case names. */
  headers?: Record<string, string>;
}

/** SHA-256 of an empty body: a GET carries none. */
export const EMPTY_SHA256 = createHash("sha256").update("").digest("hex");

const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();
const sha256Hex = (data: string) => createHash("sha256").update(data).digest("hex");

/** `20130524T000000Z` */
function amzDate(at: Date): string {
  return at
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

/** The headers to send with the GET (host included, since it is signed). */
export function signS3Get(
  request: S3Get,
  credentials: S3Credentials,
  at: Date = new Date(),
): Record<string, string> {
  const datetime = amzDate(at);
  const date = datetime.slice(0, 8);
  const headers: Record<string, string> = {
    host: request.host,
    ...request.headers,
    "x-amz-content-sha256": EMPTY_SHA256,
    "x-amz-date": datetime,
    ...(credentials.sessionToken ? { "x-amz-security-token": credentials.sessionToken } : {}),
  };
  const names = Object.keys(headers)
    .map((n) => n.toLowerCase())
    .sort();
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const canonicalHeaders = names.map((n) => `${n}:${lower[n]!.trim().replace(/\s+/g, " ")}\n`).join("");
  const signedHeaders = names.join(";");
  const canonicalRequest = ["GET", request.path, "", canonicalHeaders, signedHeaders, EMPTY_SHA256].join(
    "\n",
  );
  const scope = `${date}/${request.region}/s3/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", datetime, scope, sha256Hex(canonicalRequest)].join("\n");
  const key = hmac(
    hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, date), request.region), "s3"),
    "aws4_request",
  );
  const signature = createHmac("sha256", key).update(stringToSign).digest("hex");
  return {
    ...headers,
    authorization:
      `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope},` +
      `SignedHeaders=${signedHeaders},Signature=${signature}`,
  };
}
