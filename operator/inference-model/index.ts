/** The InferenceModel operator: desired state, queue topology, reconciler and its registration. */
export { desiredChildren, childKinds, queuePolicy } from "./desired.js";
export { defaultedSpec, withSchemaDefaults } from "./defaults.js";
export { modelStatus } from "./model-status.js";
export { ensureModelQueue, deleteModelQueue, inspectQueue, argumentDifferences } from "./queue.js";
export { inferenceModelRegistration, reconcileInferenceModel } from "./reconciler.js";
export * from "./naming.js";
