/**
 * Errors on the OpenAI-compatible routes, in OpenAI's shape
 * `{ "error": { "message", "type", "param", "code" } }`, with the same statuses and codes as the
 * rest of the gateway (errors.ts decides those).
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "../../shared/logger.js";
import { toHttpError } from "../errors.js";

/** OpenAI's error `type` for an HTTP status. */
export function openAiErrorType(status: number, code: string): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (code === "quota_exceeded" || code === "request_exceeds_quota") return "insufficient_quota";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

/** The OpenAI-shaped body and status of any error. */
export function openAiError(error: unknown) {
  const http = toHttpError(error);
  const { code, message } = http.body.error;
  return {
    status: http.status,
    headers: http.headers,
    body: { error: { message, type: openAiErrorType(http.status, code), param: null, code } },
  };
}

/** fastify error handler of the OpenAI routes. */
export function openAiErrorHandler(log: Logger) {
  return (error: unknown, _request: FastifyRequest, reply: FastifyReply) => {
    const answer = openAiError(error);
    if (answer.status >= 500) log.warn({ err: error, code: answer.body.error.code }, "request failed");
    return reply.code(answer.status).headers(answer.headers).type("application/json").send(answer.body);
  };
}
