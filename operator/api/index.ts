/**
 * The Turnpike API for operator code: the kinds (kubernetes-fluent-client classes, registered on
 * import), their spec and status types, and the CRDs themselves. Types come from
 * operator/api/generated/, which `npm run gen:crds` derives from the *.schema.ts sources.
 */
import { InferenceModel } from "./generated/inferencemodel-v1alpha1.js";
import { Pipeline } from "./generated/pipeline-v1alpha1.js";
import { TenantQuota } from "./generated/tenantquota-v1alpha1.js";

export { InferenceModel, Pipeline, TenantQuota };
export { API_VERSION, CATEGORY, GROUP, VERSION } from "./common.schema.js";
export { crds } from "./crds.js";
export { MODEL_TASKS, MODEL_URI_SCHEMES, TENSOR_DATATYPES } from "./model-source.schema.js";
export { MAX_STEPS, PROCESSORS, REQUEST_INPUT } from "./pipeline.schema.js";
export { TENANT_PRIORITIES } from "./tenant-quota.schema.js";

export type InferenceModelSpec = NonNullable<InferenceModel["spec"]>;
export type InferenceModelStatus = NonNullable<InferenceModel["status"]>;
export type TenantQuotaSpec = NonNullable<TenantQuota["spec"]>;
export type TenantQuotaStatus = NonNullable<TenantQuota["status"]>;
export type PipelineSpec = NonNullable<Pipeline["spec"]>;
export type PipelineStatus = NonNullable<Pipeline["status"]>;
/** metav1.Condition as the generated types spell it (identical for every kind). */
export type Condition = NonNullable<InferenceModelStatus["conditions"]>[number];
