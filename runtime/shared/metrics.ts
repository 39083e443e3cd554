/**
 * Every Prometheus metric the runtime exports, defined once. Dashboards and alerts name these, and a
 * test checks that they exist. Each role registers only what it uses via its own Registry.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * How often the event-loop delay monitor samples (ms). prom-client's default, 10 ms, wakes every
 * role 100 times a second while nothing happens, and each wake-up on a shared core can preempt a
 * model run's onnxruntime threads (bench/README.md, "Seventh round", ocr-c1). A block of the loop
 * as long as this is still always seen; shorter ones are sampled.
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Creates a registry with default process metrics and the metrics of every role. */
export function createMetrics(role: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({
      name: "turnpike_requests_total",
      help: "Inference requests answered by the gateway, by target and HTTP status code",
      labelNames: ["target", "code"],
      registers,
    }),
    requestDuration: new Histogram({
      name: "turnpike_request_duration_seconds",
      help: "Gateway request latency from receipt to answer",
      labelNames: ["target", "mode"],
      buckets: latencyBuckets,
      registers,
    }),
    inferOutcomes: new Histogram({
      name: "turnpike_infer_outcome_seconds",
      help: "Gateway infer requests by target and outcome (success, fail, pending), from receipt to answer",
      labelNames: ["target", "outcome"],
      buckets: latencyBuckets,
      registers,
    }),
    queueWait: new Histogram({
      name: "turnpike_queue_wait_seconds",
      help: "Time a request waited before its model run started: in its model queue, then for its batch",
      labelNames: ["model"],
      buckets: latencyBuckets,
      registers,
    }),
    inferenceDuration: new Histogram({
      name: "turnpike_inference_duration_seconds",
      help: "Model run time per batch",
      labelNames: ["model"],
      buckets: latencyBuckets,
      registers,
    }),
    batchSize: new Histogram({
      name: "turnpike_batch_size",
      help: "Requests per model run",
      labelNames: ["model"],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers,
    }),
    tokensProcessed: new Counter({
      name: "ml_tokens_processed_total",
      help: "Tokens charged for finished requests, by model (or pipeline) and tenant",
      labelNames: ["model", "tenant"],
      registers,
    }),
    quotaRejections: new Counter({
      name: "turnpike_quota_rejections_total",
      help: "Requests refused by a quota, by tenant and the limit that refused them",
      labelNames: ["tenant", "limit"],
      registers,
    }),
    inFlight: new Gauge({
      name: "turnpike_in_flight_requests",
      help: "Requests accepted and not yet finished, as seen by this process",
      labelNames: ["target"],
      registers,
    }),
    executionProviderFallback: new Gauge({
      name: "turnpike_execution_provider_fallback",
      help: "1 when the worker runs its model on another execution provider than the spec asked for",
      labelNames: ["model", "requested", "used"],
      registers,
    }),
    modelLoadSeconds: new Gauge({
      name: "turnpike_model_load_seconds",
      help: "Time to load and warm up a model",
      labelNames: ["model"],
      registers,
    }),
    resultsRecorded: new Counter({
      name: "turnpike_results_recorded_total",
      help: "Results made durable by the collector, by status",
      labelNames: ["status"],
      registers,
    }),
    cacheHits: new Counter({
      name: "turnpike_cache_hits_total",
      help: "Deterministic requests to a model with spec.cache whose answer the result cache held",
      labelNames: ["model"],
      registers,
    }),
    cacheMisses: new Counter({
      name: "turnpike_cache_misses_total",
      help: "Deterministic requests to a model with spec.cache whose answer the result cache lacked",
      labelNames: ["model"],
      registers,
    }),
    deadLettered: new Counter({
      name: "turnpike_dead_lettered_total",
      help: "Messages a worker gave up on after the delivery limit",
      labelNames: ["model"],
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
