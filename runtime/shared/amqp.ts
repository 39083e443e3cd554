/**
 * RabbitMQ plumbing shared by the gateway, worker, collector and operator: connection, the queue
 * topology (declared idempotently) and confirmed publishing.
 */
import amqp, { type ChannelModel, type ConfirmChannel, type Options } from "amqplib";
import { coalesceWrites } from "./amqp-coalesce.js";
import { names } from "./contracts/index.js";
import { EncodedBody } from "./task-body.js";

/** Queue policy of one InferenceModel, as its spec.queue says. */
export interface ModelQueuePolicy {
  maxLength: number;
  messageTtlSeconds: number;
  deliveryLimit: number;
  deadLetter: boolean;
}

export const DEFAULT_QUEUE_POLICY: ModelQueuePolicy = {
  maxLength: 10_000,
  messageTtlSeconds: 3600,
  deliveryLimit: 3,
  deadLetter: true,
};

/** Arguments of a model's quorum queue: a pure function so the operator's golden tests see them. */
export function modelQueueArguments(prefix: string, policy: ModelQueuePolicy): Record<string, unknown> {
  const n = names(prefix);
  return {
    "x-queue-type": "quorum",
    "x-max-length": policy.maxLength,
    // A full queue refuses the publish (the gateway answers 503) instead of dropping old requests.
    "x-overflow": "reject-publish",
    "x-message-ttl": policy.messageTtlSeconds * 1000,
    "x-delivery-limit": policy.deliveryLimit,
    ...(policy.deadLetter
      ? {
          "x-dead-letter-exchange": n.deadLetterExchange,
          // at-least-once keeps a dead letter until the DLQ confirms it; needs reject-publish.
          "x-dead-letter-strategy": "at-least-once",
        }
      : {}),
  };
}

/** Connects, naming the connection so it is recognisable in the management UI. */
export async function connectAmqp(url: string, connectionName: string): Promise<ChannelModel> {
  try {
    // noDelay: with Nagle on, a publish larger than one segment (an OCR task is ~6 KB) waits ~40 ms
    // for the broker's delayed ACK (bench/README.md, "Bottlenecks").
    const model = await amqp.connect(url, {
      clientProperties: { connection_name: connectionName },
      noDelay: true,
    });
    coalesceWrites(model);
    return model;
  } catch (cause) {
    throw new Error(`connecting to RabbitMQ as ${connectionName}`, { cause });
  }
}

/** Declares the installation-wide queues: results, result batches, the dead-letter exchange and its two queues. */
export async function declareSharedTopology(channel: ConfirmChannel, prefix: string): Promise<void> {
  const n = names(prefix);
  await channel.assertExchange(n.deadLetterExchange, "fanout", { durable: true });
  // Fanout: the DLQ keeps every dead letter for people, the dead-task queue is the collector's copy.
  for (const queue of [n.deadLetterQueue, n.deadTaskQueue]) {
    await channel.assertQueue(queue, { durable: true, arguments: { "x-queue-type": "quorum" } });
    await channel.bindQueue(queue, n.deadLetterExchange, "");
  }
  for (const queue of [n.resultsQueue, n.resultBatchQueue]) {
    await channel.assertQueue(queue, {
      durable: true,
      arguments: { "x-queue-type": "quorum", "x-delivery-limit": 20 },
    });
  }
}

/** Declares one model's queue with its policy; idempotent while the arguments do not change. */
export async function declareModelQueue(
  channel: ConfirmChannel,
  prefix: string,
  model: string,
  policy: ModelQueuePolicy = DEFAULT_QUEUE_POLICY,
): Promise<string> {
  const queue = names(prefix).modelQueue(model);
  await channel.assertQueue(queue, { durable: true, arguments: modelQueueArguments(prefix, policy) });
  return queue;
}

/** Raised when the broker refuses a publish (a full queue with reject-publish) or returns it. */
export class PublishRejectedError extends Error {
  constructor(queue: string, reason: string) {
    super(`RabbitMQ refused the message for ${queue}: ${reason}`);
    this.name = "PublishRejectedError";
  }
}

/**
 * Raised when the channel closed (e.g. RabbitMQ restarting) after the message was sent but before
 * the broker confirmed or refused it: the message may be on its queue or not.
 */
export class PublishOutcomeUnknownError extends Error {
  constructor(queue: string, cause: Error) {
    super(`RabbitMQ closed the channel before confirming the message for ${queue}`, { cause });
    this.name = "PublishOutcomeUnknownError";
  }
}

const returnedIds = new WeakMap<ConfirmChannel, Set<string>>();

/** One "return" listener per channel (not per publish): the broker sends basic.return before the ack. */
function returnsOf(channel: ConfirmChannel): Set<string> {
  let ids = returnedIds.get(channel);
  if (!ids) {
    const set = new Set<string>();
    channel.on("return", (msg: { properties: { messageId?: string } }) => {
      if (msg.properties.messageId) set.add(msg.properties.messageId);
    });
    returnedIds.set(channel, set);
    ids = set;
  }
  return ids;
}

/**
 * Publishes a persistent JSON message (or an EncodedBody, such as a framed task, as it is) and
 * resolves once the broker confirms it; a nack (queue full) rejects with PublishRejectedError.
 * `mandatory` turns a missing queue into a rejection too.
 * A channel that closes before the confirm rejects with PublishOutcomeUnknownError.
 */
export function publishJson(
  channel: ConfirmChannel,
  queue: string,
  body: unknown,
  options: Options.Publish & { messageId: string },
): Promise<void> {
  const returned = returnsOf(channel);
  return new Promise((resolve, reject) => {
    const encoded = body instanceof EncodedBody;
    const payload = encoded ? body.content : Buffer.from(JSON.stringify(body));
    const contentType = encoded ? body.contentType : "application/json";
    channel.sendToQueue(
      queue,
      payload,
      { persistent: true, contentType, mandatory: true, ...options },
      (error) => {
        if (returned.delete(options.messageId)) reject(new PublishRejectedError(queue, "no such queue"));
        // amqplib reports a nack as "message nacked"; anything else means the channel closed.
        else if (error?.message === "message nacked") reject(new PublishRejectedError(queue, "queue full"));
        else if (error) reject(new PublishOutcomeUnknownError(queue, error));
        else resolve();
      },
    );
  });
}
