/**
 * What operator and runtime must agree on, written once: the closed lists (tasks, processors,
 * datatypes), the wire messages, the runtime config, queue and key names, and how a route maps
 * onto queues. The operator imports these from here; nothing in this folder does I/O.
 */
export * from "./vocabulary.js";
export * from "./messages.js";
export * from "./names.js";
export * from "./runtime-config.js";
export * from "./route-plan.js";
export * from "./execution-provider.js";
export * from "./generation.js";
export * from "./result-cache.js";
