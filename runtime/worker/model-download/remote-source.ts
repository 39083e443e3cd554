/**
 * Where an `https://` or `s3://` model is fetched from, and with which headers. S3 settings come
 * from the variables AWS's SDKs and KServe's storage initializer read: AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL (an S3-compatible server such as MinIO; addressed path-style), AWS_REGION or
 * AWS_DEFAULT_REGION (default us-east-1), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN (without keys the GET is anonymous, for a public bucket).
 */
import { signS3Get, type S3Credentials } from "./s3-signature.js";

/** A GET to make: a fresh one per attempt, since an S3 signature carries the time. */
export interface RemoteRequest {
  /** The URL with any credentials left out, for messages. */
  url: string;
  headers: () => Record<string, string>;
}

/** Whether the worker downloads `uri` instead of resolving it in place. */
export function isRemoteUri(uri: string): boolean {
  return /^(https|s3):\/\//i.test(uri);
}

/** Percent-encodes each segment of an S3 key as SigV4 wants it, keeping the slashes. */
function encodeKey(key: string): string {
  return key
    .split("/")
    .map((s) =>
      encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join("/");
}

function credentialsOf(env: NodeJS.ProcessEnv): S3Credentials | undefined {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) return undefined;
  return {
    accessKeyId,
    secretAccessKey,
    ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
  };
}

/** The request for `uri` (https:// or s3://bucket/key); throws on anything else. */
export function remoteRequest(uri: string, env: NodeJS.ProcessEnv = process.env): RemoteRequest {
  if (/^https:\/\//i.test(uri)) {
    const url = new URL(uri);
    if (url.username || url.password)
      throw new Error(`model uri ${url.host}: credentials in an https:// uri are not supported`);
    return { url: url.href, headers: () => ({}) };
  }
  const match = /^s3:\/\/([^/]+)\/(.+)$/i.exec(uri);
  if (!match) throw new Error(`model uri ${uri} is neither https:// nor s3://<bucket>/<key>`);
  const [, bucket, key] = match as unknown as [string, string, string];
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1";
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  let url: URL;
  if (endpoint) {
    // S3-compatible servers (MinIO, Ceph, moto) serve buckets path-style under their endpoint.
    const base = new URL(endpoint);
    url = new URL(`${base.origin}${base.pathname.replace(/\/$/, "")}/${bucket}/${encodeKey(key)}`);
  } else if (bucket.includes(".")) {
    // A dotted bucket name breaks the TLS name of the virtual host.
    url = new URL(`https://s3.${region}.amazonaws.com/${bucket}/${encodeKey(key)}`);
  } else {
    url = new URL(`https://${bucket}.s3.${region}.amazonaws.com/${encodeKey(key)}`);
  }
  const credentials = credentialsOf(env);
  return {
    url: url.href,
    headers: () =>
      credentials ? signS3Get({ host: url.host, path: url.pathname, region }, credentials) : {},
  };
}
