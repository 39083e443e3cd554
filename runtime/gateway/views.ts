/**
 * What the gateway answers about a request, pure: the OIP v2 infer response built from a record's
 * wire tensors, and the request-status document of GET /v1/requests/{id} and its SSE events.
 */
import {
  FINAL_REQUEST_STATUSES,
  type FinalRequestStatus,
  type RequestStatus,
  type Target,
  type WireTensor,
} from "../shared/contracts/index.js";
import type { RequestRecord } from "../shared/db/index.js";
import { decodeTensor, toJsonData } from "../shared/tensors.js";
import { ApiError } from "./errors.js";

/** A request the gateway accepted but that has no durable record yet (Redis requestTenantKey). */
export interface PendingRequest {
  tenant: string;
  target: Target;
  status: RequestStatus;
  /** Epoch ms. */
  submittedAt: number;
  /** Set once the task is confirmed on its queue (an Idempotency-Key retry then never re-publishes it). */
  published?: boolean;
}

/** The state of a request as one tenant may see it. */
export type RequestState =
  | { kind: "record"; id: string; record: RequestRecord }
  | { kind: "pending"; id: string; pending: PendingRequest };

/** A request with its final status. */
export type FinalState = {
  kind: "record";
  id: string;
  record: RequestRecord & { status: FinalRequestStatus };
};

/** An OIP v2 output tensor with JSON data. */
export interface OipTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: (number | boolean | string)[];
}

/** OIP v2 infer response. */
export interface OipInferResponse {
  model_name: string;
  id: string;
  parameters: { request_id: string };
  outputs: OipTensor[];
}

/** Decodes wire tensors into OIP JSON tensors, keeping only `only` when given. */
export function toOipOutputs(outputs: readonly WireTensor[] | null, only?: readonly string[]): OipTensor[] {
  const wanted = only ? new Set(only) : undefined;
  return (outputs ?? [])
    .filter((t) => !wanted || wanted.has(t.name))
    .map((t) => {
      const decoded = decodeTensor(t);
      return { name: t.name, datatype: t.datatype, shape: decoded.shape, data: toJsonData(decoded) };
    });
}

/** The OIP answer of a succeeded record; `clientId` is the `id` the caller sent, if any. */
export function toOipResponse(
  record: RequestRecord,
  options: { clientId?: string; outputs?: readonly string[] } = {},
): OipInferResponse {
  return {
    model_name: record.target,
    id: options.clientId ?? record.id,
    parameters: { request_id: record.id },
    outputs: toOipOutputs(record.outputs, options.outputs),
  };
}

/** The answer to a caller waiting for a request its tenant cancelled (DELETE /v1/requests/{id}). */
export function cancelledError(id: string): ApiError {
  return new ApiError(
    "request_cancelled",
    `request ${id} was cancelled by its tenant`,
    {},
    { details: { id } },
  );
}

/** True once a request has its final status. */
export function isFinal(state: RequestState): state is FinalState {
  return (
    state.kind === "record" &&
    (FINAL_REQUEST_STATUSES as readonly RequestStatus[]).includes(state.record.status)
  );
}

/** The document of GET /v1/requests/{id} (and the data of its SSE events). */
export function requestView(state: RequestState) {
  if (state.kind === "pending") {
    const p = state.pending;
    return {
      id: state.id,
      status: p.status,
      target: p.target,
      submittedAt: new Date(p.submittedAt).toISOString(),
      finishedAt: null,
    };
  }
  const r = state.record;
  return {
    id: r.id,
    status: r.status,
    target: { kind: r.targetKind, name: r.target },
    submittedAt: r.submittedAt.toISOString(),
    finishedAt: r.finishedAt ? r.finishedAt.toISOString() : null,
    tokens: {
      reserved: r.reservedTokens,
      input: r.inputTokens,
      output: r.outputTokens,
      charged: r.chargedTokens,
    },
    ...(r.cached ? { cached: true } : {}),
    // A generation its tenant stopped keeps the text it had produced.
    ...(r.status === "succeeded" || (r.status === "cancelled" && r.outputs?.length)
      ? { result: toOipResponse(r) }
      : {}),
    ...(r.error ? { error: r.error } : {}),
  };
}

/** The request-status document. */
export type RequestView = ReturnType<typeof requestView>;
