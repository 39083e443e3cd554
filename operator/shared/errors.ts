/**
 * Typed reconcile errors decide retry versus Degraded: a TransientError (network, conflict, 5xx,
 * a dependency not up yet) is retried with backoff; a PermanentError (the spec itself is wrong, a
 * reference is missing) sets Degraded with its message and waits for the next change.
 */

export class TransientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TransientError";
  }
}

export class PermanentError extends Error {
  /** A CamelCase reason for the Degraded condition. */
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PermanentError";
    this.reason = reason;
  }
}

/**
 * The exception inside kubernetes-fluent-client's failure for a request that got no usable answer
 * (connection refused or reset, TLS, a body that did not parse), else undefined. Such a failure
 * also carries a status the client made up (400, or the error code's number): no verdict of the
 * apiserver, so it must not read as one (a reset connection would set a model Degraded "ApplyFailed").
 */
function noAnswerCause(error: unknown): unknown {
  if (typeof error !== "object" || error === null || error instanceof Error) return undefined;
  const failure = error as { ok?: unknown; e?: unknown };
  return failure.ok === false ? failure.e : undefined;
}

/** HTTP status the apiserver answered a kubernetes-fluent-client request with, when it answered. */
export function httpStatusOf(error: unknown): number | undefined {
  if (noAnswerCause(error) !== undefined) return undefined;
  const status = (error as { status?: unknown })?.status;
  return typeof status === "number" ? status : undefined;
}

/** The next error in the chain: the cause, or the exception of a request that got no answer. */
const causeOf = (error: unknown): unknown => (error as { cause?: unknown }).cause ?? noAnswerCause(error);

/** Walks the cause chain to find a PermanentError. */
export function permanentCause(error: unknown): PermanentError | undefined {
  for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
    if (e instanceof PermanentError) return e;
  }
  return undefined;
}

/**
 * Whether retrying can help: everything but a PermanentError and the apiserver's 4xx verdicts
 * on what we sent (400 bad request, 403 forbidden, 404 on a create path, 422 invalid).
 * 409 (conflict) and 429 (throttled) are retried, and so is a request that got no answer.
 */
export function isRetryable(error: unknown): boolean {
  if (permanentCause(error)) return false;
  for (let e: unknown = error; e; e = causeOf(e)) {
    const status = httpStatusOf(e);
    if (status !== undefined) return status >= 500 || status === 409 || status === 429 || status === 408;
  }
  return true;
}

/** A one-line description of an error and its causes, for conditions and Events. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e && parts.length < 5; e = causeOf(e)) {
    const message =
      e instanceof Error
        ? e.message
        : // kubernetes-fluent-client throws the fetch response itself, not an Error.
          noAnswerCause(e) !== undefined
          ? "no answer from the apiserver"
          : httpStatusOf(e) !== undefined
            ? `HTTP ${httpStatusOf(e)} ${(e as { statusText?: string }).statusText ?? ""}`.trim()
            : String(e);
    const data = (e as { data?: { message?: string } }).data;
    parts.push(data?.message ? `${message} (${data.message})` : message);
  }
  return parts.join(": ");
}
