/**
 * The one place where errors become HTTP answers; the stable code decides the status and is also
 * sent as the `Turnpike-Error-Code` header. On the Open Inference Protocol routes (`/v2/...`) the
 * body is the protocol's `{ "error": "human text", "code": "stable_code" }` (OIP clients print
 * `error` as a string); elsewhere it is `{ "error": { "code": "stable_code", "message": "human text" } }`.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { PublishRejectedError } from "../shared/amqp.js";
import type { Logger } from "../shared/logger.js";
import { TensorError } from "../shared/tensors.js";

/** Every error code the gateway answers with, and its HTTP status. */
export const ERROR_STATUS = {
  invalid_json: 400,
  empty_body: 400,
  invalid_request: 400,
  invalid_tensor: 400,
  unknown_input: 400,
  missing_input: 400,
  duplicate_input: 400,
  datatype_mismatch: 400,
  shape_mismatch: 400,
  unknown_output: 400,
  invalid_parameter: 400,
  invalid_idempotency_key: 400,
  invalid_request_id: 400,
  invalid_cursor: 400,
  unauthenticated: 401,
  invalid_api_key: 401,
  invalid_token: 401,
  tenant_unknown: 403,
  tenant_suspended: 403,
  model_not_allowed: 403,
  model_not_found: 404,
  model_version_not_found: 404,
  request_not_found: 404,
  route_not_found: 404,
  idempotency_key_conflict: 409,
  idempotency_key_in_use: 409,
  request_finished: 409,
  request_cancelled: 409,
  request_timeout: 408,
  body_too_large: 413,
  unsupported_media_type: 415,
  headers_too_large: 431,
  target_not_runnable: 422,
  request_exceeds_quota: 422,
  inference_rejected: 422,
  quota_exceeded: 429,
  rate_limited: 429,
  internal_error: 500,
  inference_failed: 502,
  queue_full: 503,
  model_unavailable: 503,
  model_not_ready: 503,
  service_unavailable: 503,
  sync_timeout: 504,
} as const;

/** A stable error code of the gateway's API. */
export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * A refusal with a stable code, a message for people, optional response headers, and optional
 * `details`: extra body fields (e.g. the id of a request to poll) next to the code.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly details?: Record<string, unknown>;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string | number> = {},
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message, options);
    this.name = "ApiError";
    this.status = ERROR_STATUS[code];
    this.details = options?.details;
  }
}

/** The JSON body of an error answer (outside the /v2 routes). */
export interface ErrorBody {
  error: { code: string; message: string } & Record<string, unknown>;
}

/** The JSON body of an error answer on the Open Inference Protocol routes (/v2/...). */
export interface OipErrorBody extends Record<string, unknown> {
  error: string;
  code: string;
}

/** The response header that carries the stable error code on every error answer. */
export const ERROR_CODE_HEADER = "turnpike-error-code";

/** True for a URL of the Open Inference Protocol routes, whose errors take the protocol's shape. */
export function isOipPath(url: string): boolean {
  return url === "/v2" || url.startsWith("/v2/") || url.startsWith("/v2?");
}

/** What an error becomes on the wire. */
export interface HttpError {
  status: number;
  body: ErrorBody;
  headers: Record<string, string | number>;
}

const FASTIFY_CODES: Record<string, [ErrorCode, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ["body_too_large", "the request body is larger than the gateway accepts"],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ["unsupported_media_type", "send the body as application/json"],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ["invalid_request", "the Content-Length does not match the body"],
  FST_ERR_CTP_EMPTY_JSON_BODY: ["empty_body", "the JSON body is empty"],
  FST_ERR_CTP_INVALID_JSON_BODY: ["invalid_json", "the body is not valid JSON"],
  FST_ERR_VALIDATION: ["invalid_request", "the request is not valid"],
  FST_ERR_BAD_URL: ["invalid_request", "the URL is not valid (bad percent-encoding)"],
  FST_ERR_MAX_PARAM_LENGTH: ["invalid_request", "a path segment is longer than any model name or request id"],
};

/** Maps any error to its HTTP answer; unknown errors become a 500 without internals. */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof ApiError) return answer(error.code, error.message, error.headers, error.details);
  if (error instanceof TensorError) return answer("invalid_tensor", error.message);
  if (error instanceof PublishRejectedError) {
    return /no such queue/.test(error.message)
      ? answer("model_unavailable", "the model has no queue yet; is it deployed?", { "retry-after": 5 })
      : answer("queue_full", "the model's queue is full; retry later", { "retry-after": 1 });
  }
  const fastifyError = error as Partial<FastifyError> | undefined;
  const known = fastifyError?.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (known) {
    const detail =
      fastifyError!.code === "FST_ERR_VALIDATION" ||
      fastifyError!.code === "FST_ERR_CTP_INVALID_CONTENT_LENGTH";
    return answer(known[0], detail ? fastifyError!.message! : known[1]);
  }
  // JSON.parse errors of the body parser carry statusCode 400 (SyntaxError, or secure-json-parse).
  if (
    fastifyError?.statusCode === 400 &&
    (error instanceof SyntaxError || /JSON|prototype/i.test(fastifyError.message ?? ""))
  ) {
    return answer("invalid_json", "the body is not valid JSON");
  }
  if (fastifyError?.statusCode === 413) return answer(...FASTIFY_CODES.FST_ERR_CTP_BODY_TOO_LARGE!);
  if (fastifyError?.statusCode === 415) return answer(...FASTIFY_CODES.FST_ERR_CTP_INVALID_MEDIA_TYPE!);
  if (fastifyError?.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return answer("invalid_request", fastifyError.message ?? "the request is not valid");
  }
  return answer("internal_error", "the gateway failed to handle the request; it has been logged");
}

function answer(
  code: ErrorCode,
  message: string,
  headers: Record<string, string | number> = {},
  details: Record<string, unknown> = {},
): HttpError {
  return { status: ERROR_STATUS[code], body: { error: { ...details, code, message } }, headers };
}

/**
 * Sends an error answer. Unexpected errors are logged with their stack; expected 5xx refusals (a
 * full queue, a dependency down) as warnings; 4xx refusals at debug level.
 */
export function sendError(reply: FastifyReply, error: unknown, log: Logger): FastifyReply {
  const http = toHttpError(error);
  const { code, message, ...details } = http.body.error;
  const body: ErrorBody | OipErrorBody = isOipPath(reply.request.url)
    ? { ...details, error: message, code }
    : http.body;
  if (http.status < 500) log.debug({ code, reason: message }, "request refused");
  else if (error instanceof ApiError || error instanceof PublishRejectedError) {
    log.warn({ code, reason: message, cause: (error as Error).cause }, "request refused");
  } else log.error({ err: error, code }, "request failed");
  return reply
    .code(http.status)
    .headers({ ...http.headers, [ERROR_CODE_HEADER]: code })
    .type("application/json")
    .send(body);
}

/** fastify error handler using {@link sendError}. */
export function errorHandler(log: Logger) {
  return (error: unknown, _request: FastifyRequest, reply: FastifyReply) => sendError(reply, error, log);
}

/**
 * Answers what Node's HTTP parser refuses before any route runs (a bad method or header byte, a
 * lying Content-Length, headers over the size limit, a request that never finishes arriving) in
 * the same JSON error shape, then closes the connection: fastify's default answers these with a
 * body of its own shape.
 */
export function clientErrorHandler(log: Logger) {
  return (error: Error & { code?: string }, socket: Socket): void => {
    if (error.code === "ECONNRESET" || socket.destroyed) return;
    const [code, message]: [ErrorCode, string] =
      error.code === "HPE_HEADER_OVERFLOW"
        ? ["headers_too_large", "the request headers are larger than the gateway accepts"]
        : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? ["request_timeout", "the request did not arrive in time"]
          : ["invalid_request", "the request is not valid HTTP/1.1"];
    log.debug({ code, reason: error.code }, "request refused by the HTTP parser");
    const status = ERROR_STATUS[code];
    const body = JSON.stringify({ error: { code, message } });
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `Content-Type: application/json\r\nTurnpike-Error-Code: ${code}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(error);
  };
}
