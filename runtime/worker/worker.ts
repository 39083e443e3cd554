/**
 * Wires one worker: config -> model (load, warm up) -> RabbitMQ (topology, consumer) -> health.
 *
 * Start-up order matters: the health server listens first (so the kubelet sees a live process
 * while a large model loads), the model is loaded and warmed up, and only then does the worker
 * consume and report ready. Close reverses it and drains (see ModelConsumer.stop).
 */
import { AmqpConnection, type AmqpSession } from "../shared/amqp-connection.js";
import type { InferenceTask, RuntimeConfig } from "../shared/contracts/index.js";
import { LaneDeclarer } from "../shared/lanes.js";
import { logger } from "../shared/logger.js";
import { createMetrics, type Metrics } from "../shared/metrics.js";
import type { ResolveOptions } from "../shared/models/model-source.js";
import { startProbeServer } from "../shared/probe-server.js";
import { readRuntimeConfig } from "../shared/runtime-config-file.js";
import { prefetchFor, readWorkerEnv, workerId, type WorkerEnv } from "./config.js";
import { CancelMarks } from "./cancel-marks.js";
import { ModelConsumer } from "./consumer.js";
import { engineFor, type ModelRunner } from "./engines/index.js";
import { cudaDeviceId } from "./engines/onnx/execution-provider.js";
import { LiveConfig } from "./live-config.js";
import { localModel } from "./model-download/local-model.js";
import { ensureLanes, ensureQueues, fairClassOf } from "./model-queue.js";
import { dictionaryFor } from "./tasks/ocr/dictionary.js";

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
  /** Extra trusted CA certificates (PEM) for an https:// model (tests). */
  ca?: string;
  /** Called for each task as its message arrives, before it waits for its turn (tests, measurements). */
  onReceived?: (task: InferenceTask) => void;
  /** Called for each task as it is accepted for running, in that order (tests, measurements). */
  onAccepted?: (task: InferenceTask) => void;
  /** Called with a batch's tasks as the model starts running them (tests, measurements). */
  onBatchStarted?: (tasks: InferenceTask[]) => void;
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

/** The config and the model this worker serves; throws when the model is not in the config. */
function servedModel(options: WorkerOptions, env: WorkerEnv) {
  const configPath = typeof options.config === "object" ? undefined : (options.config ?? env.TURNPIKE_CONFIG);
  const config = typeof options.config === "object" ? options.config : readRuntimeConfig(configPath!);
  const modelName = options.model ?? env.TURNPIKE_MODEL;
  if (!modelName) throw new Error("no model to serve: set TURNPIKE_MODEL");
  const model = config.models.find((m) => m.name === modelName);
  if (!model) {
    const known = config.models.map((m) => m.name).join(", ") || "none";
    throw new Error(`model ${modelName} is not in the runtime config (models: ${known})`);
  }
  return { configPath, live: new LiveConfig(config, model) };
}

/** What the probes report: live until the worker cannot go on, ready while warm and consuming. */
interface Health {
  live: boolean;
  ready: boolean;
  closing: boolean;
}

/** A loaded model and what its requests need besides it. */
interface LoadedModel {
  runner: ModelRunner;
  dictionary: (uri?: string) => readonly string[];
}

/** Starts a worker for one model; resolves when the health server listens (see `ready`). */
export async function startWorker(options: WorkerOptions = {}): Promise<Worker> {
  const env = readWorkerEnv(options.env ?? process.env);
  const { configPath, live } = servedModel(options, env);
  const { config, model: modelConfig } = live;
  const log = logger("worker", { prefix: config.prefix, model: modelConfig.name });
  const metrics = createMetrics("worker");
  const health: Health = { live: true, ready: false, closing: false };
  const server = await startProbeServer({
    host: env.TURNPIKE_HOST,
    port: env.TURNPIKE_PORT,
    metrics,
    isLive: () => health.live,
    isReady: () => health.ready && !health.closing,
  });
  const id = workerId(env, options.env ?? process.env);
  const cancelMarks = new CancelMarks(env.TURNPIKE_REDIS_URL, config.prefix, log);
  let model: LoadedModel | undefined;
  let consumer: ModelConsumer | undefined;
  let stopWatching: (() => void) | undefined;
  const lanes = new LaneDeclarer(config.prefix);

  const fatal = (error: Error) => {
    if (health.closing || !health.live) return;
    health.live = false;
    health.ready = false;
    log.error({ err: error }, "worker cannot go on");
    // Stop taking messages; closing the channel hands every unacked one back to the queue.
    void amqp.close();
    options.onFatal?.(error);
  };

  /** Makes sure the queues exist and consumes on a new session. */
  const consume = async (session: AmqpSession) => {
    const queue = await ensureQueues(session, config.prefix, modelConfig);
    const tenantLanes = await ensureLanes(session, lanes, live.config, modelConfig);
    const { runner, dictionary } = model!;
    const next = new ModelConsumer({
      channel: session.channel,
      prefix: config.prefix,
      queues: [queue, ...tenantLanes],
      classOf: (tenant) => fairClassOf(live.config, tenant),
      onReceived: options.onReceived,
      onAccepted: options.onAccepted,
      onBatchStarted: options.onBatchStarted,
      model: {
        runner,
        dictionary,
        stepSettings: (target, step) => live.stepSettings(target, step),
        worker: id,
      },
      metrics,
      log,
      // A generative model runs maxBatchSize sequences side by side: one message per sequence.
      prefetch: runner.generator
        ? (env.TURNPIKE_PREFETCH ?? modelConfig.batching.maxBatchSize)
        : prefetchFor(env, runner.batchable ? modelConfig.batching.maxBatchSize : 1),
      onBroken: (error) => fatal(new Error(`model ${modelConfig.name} cannot run`, { cause: error })),
      cancelCheck: cancelMarks,
    });
    next.configure(live.batching);
    if (health.closing) throw new Error("the worker is closing");
    consumer = next;
    await next.start(() => fatal(new Error(`the broker cancelled consumption of a queue of ${queue}`)));
  };

  /** A reloaded config may list new tenants: consume their lanes too. */
  const followTenants = async () => {
    const session = amqp.current;
    const current = consumer;
    if (!session || !current) return;
    for (const lane of await ensureLanes(session, lanes, live.config, modelConfig))
      await current.consume(lane);
  };

  /**
   * A lost connection (RabbitMQ restarting, a network blip) is waited out in-process: the model
   * stays loaded, the broker requeues every unacked message, and a new connection consumes again.
   * The old consumer's batches still run, but their outcomes cannot be published or acked on the
   * closed channel, so nothing of theirs counts twice.
   */
  const amqp = new AmqpConnection({
    url: env.TURNPIKE_AMQP_URL,
    name: `turnpike-worker-${modelConfig.name}`,
    log,
    reconnect: "background",
    setup: consume,
    onLost: (_session, why) => {
      consumer = undefined;
      health.ready = false;
      log.warn(`${why}; unacked messages return to the queue; reconnecting`);
    },
    onReconnected: () => {
      health.ready = !health.closing && health.live && amqp.ready;
      log.info("reconnected to RabbitMQ; consuming again");
    },
  });

  const ready = (async () => {
    const resolve =
      options.resolve ?? (env.TURNPIKE_PVC_ROOT ? { pvcMountRoot: env.TURNPIKE_PVC_ROOT } : undefined);
    // An https:// or s3:// model is downloaded and verified first; the engine loads the local file.
    const source = env.TURNPIKE_MODEL_URI ? { ...modelConfig, uri: env.TURNPIKE_MODEL_URI } : modelConfig;
    const loadable = await localModel(source, {
      sha256: env.TURNPIKE_MODEL_SHA256,
      dir: env.TURNPIKE_MODEL_DOWNLOAD_DIR,
      env: options.env ?? process.env,
      log,
      ...(options.ca ? { ca: options.ca } : {}),
    });
    const runner = await engineFor(modelConfig).load(loadable, {
      log,
      resolve,
      cudaDeviceId: cudaDeviceId(options.env ?? process.env),
    });
    metrics.modelLoadSeconds.set({ model: modelConfig.name }, runner.loadSeconds);
    if (runner.provider) {
      const { requested, used } = runner.provider;
      const fallback = requested === used ? 0 : 1;
      metrics.executionProviderFallback.set({ model: modelConfig.name, requested, used }, fallback);
    }
    model = { runner, dictionary: dictionaryFor(runner, log, resolve) };
    if (health.closing) return;
    await amqp.session();
    if (configPath) {
      stopWatching = live.follow(
        configPath,
        log,
        (batching) => consumer?.configure(batching),
        () => void followTenants().catch((err: unknown) => log.warn({ err }, "consuming new tenant lanes")),
      );
    }
    health.ready = true;
    log.info({ url: server.url }, "worker ready");
  })();
  ready.catch((err: unknown) => {
    health.live = false;
    log.error({ err }, "worker failed to start");
  });

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      health.closing = true;
      health.ready = false;
      const reconnectStopped = amqp.stopReconnecting();
      await ready.catch(() => undefined);
      await reconnectStopped;
      stopWatching?.();
      if (consumer) await consumer.stop(env.TURNPIKE_DRAIN_TIMEOUT_MS);
      await amqp.close();
      cancelMarks.close();
      await model?.runner.release().catch((err: unknown) => log.warn({ err }, "releasing the model"));
      await server.close();
      log.info("worker closed");
    })());

  return { ready, close, url: server.url, metrics };
}
