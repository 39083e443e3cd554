/**
 * The model's RabbitMQ topology on the real broker: declared idempotently with the arguments the
 * runtime shares (runtime/shared/amqp.ts), inspected through the management API (depth,
 * consumers, arguments) and deleted only by the finalizer.
 *
 * RabbitMQ cannot change a quorum queue's arguments in place (a redeclare with different ones
 * fails with PRECONDITION_FAILED and closes the channel). The existing arguments are therefore
 * compared first, and a difference becomes a PermanentError that names the argument, the spec
 * field and the way out. Policies are not used to paper over it: RabbitMQ 3.10's operator policies
 * can only tighten max-length and message-ttl, never loosen them or change delivery-limit.
 */
import type { ConfirmChannel } from "amqplib";
import {
  declareModelQueue,
  declareSharedTopology,
  modelQueueArguments,
  type ModelQueuePolicy,
} from "../../runtime/shared/amqp.js";
import type { ReconcileContext } from "../shared/context.js";
import { PermanentError, TransientError } from "../shared/errors.js";
import { modelQueueName } from "./naming.js";

/** What the management API says about a queue. */
export interface QueueInfo {
  name: string;
  /** Ready plus unacknowledged messages. */
  messages: number;
  consumers: number;
  arguments: Record<string, unknown>;
  /** Each consumer's arguments (workers report their execution provider there). */
  consumerArguments?: Record<string, unknown>[];
}

/** Base URL, auth header and vhost of the management API, from a URL that may carry credentials and a vhost path. */
export function managementApi(url: string) {
  const parsed = new URL(url);
  const auth = parsed.username
    ? `Basic ${Buffer.from(
        `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`,
      ).toString("base64")}`
    : undefined;
  // As KEDA reads the same URL: the last path segment, if any, is the vhost.
  const vhost = decodeURIComponent(parsed.pathname.split("/").filter(Boolean).pop() ?? "") || "/";
  return { origin: `${parsed.protocol}//${parsed.host}`, auth, vhost };
}

/** Reads a queue through the management API; undefined when it does not exist. */
export async function inspectQueue(managementUrl: string, queue: string): Promise<QueueInfo | undefined> {
  const api = managementApi(managementUrl);
  const url = `${api.origin}/api/queues/${encodeURIComponent(api.vhost)}/${encodeURIComponent(queue)}`;
  let response: Response;
  try {
    response = await fetch(url, {
      headers: api.auth ? { authorization: api.auth } : {},
      signal: AbortSignal.timeout(10_000),
    });
  } catch (cause) {
    throw new TransientError(`reading queue ${queue} from the RabbitMQ management API`, { cause });
  }
  if (response.status === 404) return undefined;
  if (!response.ok) {
    throw new TransientError(
      `reading queue ${queue} from the RabbitMQ management API: HTTP ${response.status} ${await response.text()}`,
    );
  }
  const body = (await response.json()) as Partial<QueueInfo> & {
    consumer_details?: { arguments?: Record<string, unknown> }[];
  };
  return {
    name: queue,
    messages: body.messages ?? 0,
    consumers: body.consumers ?? 0,
    arguments: body.arguments ?? {},
    consumerArguments: (body.consumer_details ?? []).map((c) => c.arguments ?? {}),
  };
}

/** Where each queue argument comes from, for a message a user can act on. */
const ARGUMENT_SOURCES: Record<string, { field: string; show?: (value: unknown) => string }> = {
  "x-max-length": { field: "spec.queue.maxLength" },
  "x-message-ttl": { field: "spec.queue.messageTtlSeconds", show: (v) => `${Number(v) / 1000} s` },
  "x-delivery-limit": { field: "spec.queue.deliveryLimit" },
  "x-dead-letter-exchange": { field: "spec.queue.deadLetter" },
  "x-dead-letter-strategy": { field: "spec.queue.deadLetter" },
};

function describeValue(key: string, value: unknown): string {
  if (value === undefined) return "unset";
  const show = ARGUMENT_SOURCES[key]?.show;
  return show ? `${JSON.stringify(value)} (${show(value)})` : JSON.stringify(value);
}

/** Human-readable differences between a queue's arguments and the desired ones; empty when equal. */
export function argumentDifferences(
  current: Record<string, unknown>,
  desired: Record<string, unknown>,
): string[] {
  const keys = [...new Set([...Object.keys(current), ...Object.keys(desired)])].sort();
  return keys
    .filter((key) => JSON.stringify(current[key]) !== JSON.stringify(desired[key]))
    .map((key) => {
      const source = ARGUMENT_SOURCES[key]?.field ?? "Turnpike itself (not a spec field)";
      return (
        `${key} is ${describeValue(key, current[key])} on the queue, but ${source} asks for ` +
        describeValue(key, desired[key])
      );
    });
}

function argumentsChanged(queue: string, differences: string[]): PermanentError {
  return new PermanentError(
    "QueueArgumentsChanged",
    `RabbitMQ cannot change the arguments of the existing quorum queue ${queue} in place: ` +
      `${differences.join("; ")}. Either set spec.queue back to the queue's values, or let the queue ` +
      `drain, delete it (e.g. rabbitmqadmin delete queue name=${queue}) and the operator declares it ` +
      "again with the new arguments on its next reconcile.",
  );
}

/** Turns a failed AMQP declaration into a typed error: 406 means changed arguments, anything else may pass. */
function classifyAmqpError(queue: string, error: unknown): Error {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 406 || message.includes("PRECONDITION_FAILED")) {
    // e.g. "inequivalent arg 'x-max-length' for queue '…' in vhost '/': received … but current is …"
    const detail = /inequivalent arg '([^']+)'.*?: (received .*)$/.exec(message);
    const differences = detail ? [`${detail[1]}: ${detail[2]!.replace(/"+$/, "")}`] : [message];
    return argumentsChanged(queue, differences);
  }
  return new TransientError(`declaring RabbitMQ queue ${queue}`, { cause: error });
}

/**
 * Makes sure the model's queue (and the namespace's shared dead-letter and results queues) exist
 * with the spec's policy. Returns the queue as last listed. Reads go through the context's queue
 * inventory, and a queue listed (or declared since) with the desired arguments is not declared
 * again, so a no-op reconcile costs the broker nothing.
 */
export async function ensureModelQueue(
  ctx: ReconcileContext,
  namespace: string,
  name: string,
  policy: ModelQueuePolicy,
): Promise<QueueInfo> {
  const queue = modelQueueName(namespace, name);
  const desired = modelQueueArguments(namespace, policy);
  const existing = await ctx.queues.inspect(namespace, queue);
  const declare = await ctx.queues.needsDeclaration(namespace, queue, desired);
  if (declare && existing) {
    const differences = argumentDifferences(existing.arguments, desired);
    if (differences.length > 0) throw argumentsChanged(queue, differences);
  }
  if (declare || (await ctx.queues.needsSharedTopology(namespace))) {
    await declareModelTopology(ctx, namespace, name, policy);
  }
  return existing ?? { name: queue, messages: 0, consumers: 0, arguments: desired, consumerArguments: [] };
}

/**
 * Declares the namespace's shared queues (unless the inventory knows them declared) and the
 * model's queue over AMQP. A PRECONDITION_FAILED (arguments changed since the queue was declared)
 * becomes a PermanentError naming the argument; anything else, a broker that cannot be reached
 * included, is a TransientError.
 */
export async function declareModelTopology(
  ctx: ReconcileContext,
  namespace: string,
  name: string,
  policy: ModelQueuePolicy,
): Promise<void> {
  const queue = modelQueueName(namespace, name);
  let channel: ConfirmChannel;
  try {
    channel = await ctx.amqpChannel();
  } catch (cause) {
    throw new TransientError("connecting to RabbitMQ", { cause });
  }
  try {
    await ctx.queues.ensureSharedTopology(namespace, () => declareSharedTopology(channel, namespace));
    await declareModelQueue(channel, namespace, name, policy);
    ctx.queues.declared(queue, modelQueueArguments(namespace, policy));
  } catch (error) {
    ctx.queues.forget(namespace, queue);
    ctx.queues.forgetSharedTopology(namespace);
    throw classifyAmqpError(queue, error);
  }
}

/** Deletes the model's queue and whatever it holds; a queue that is already gone is fine. */
export async function deleteModelQueue(ctx: ReconcileContext, namespace: string, name: string) {
  const queue = modelQueueName(namespace, name);
  try {
    const channel = await ctx.amqpChannel();
    const { messageCount } = await channel.deleteQueue(queue);
    ctx.queues.forget(namespace, queue);
    return { queue, messageCount };
  } catch (cause) {
    throw new TransientError(`deleting RabbitMQ queue ${queue}`, { cause });
  }
}
