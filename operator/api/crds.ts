/** Every Turnpike CustomResourceDefinition, in the order crds/ and docs/api.md list them. */
import type { CustomResourceDefinition } from "./common.schema.js";
import { inferenceModelCrd } from "./inference-model.schema.js";
import { pipelineCrd } from "./pipeline.schema.js";
import { tenantQuotaCrd } from "./tenant-quota.schema.js";

export const crds: CustomResourceDefinition[] = [inferenceModelCrd, tenantQuotaCrd, pipelineCrd];
