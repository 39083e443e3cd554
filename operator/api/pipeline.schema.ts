/**
 * Pipeline: a dataflow of steps over InferenceModels and built-in processors, callable like a
 * model. Source of truth for crds/pipelines.turnpike.dev.yaml (run `npm run gen:crds` after
 * editing). Tekton also has a kind named Pipeline: the short name is `tppl` and the fully
 * qualified resource is `pipelines.turnpike.dev`.
 */
import { PIPELINE_KIND } from "../shared/names.js";
import { PROCESSORS, REQUEST_INPUT } from "../../runtime/shared/contracts/index.js";
import {
  ageColumn,
  conditions,
  customResourceDefinition,
  dnsLabel,
  int32,
  list,
  obj,
  observedGeneration,
  positive,
  readyColumn,
  rootSchema,
  rule,
  stringMap,
  str,
  type Schema,
} from "./common.schema.js";

export { PROCESSORS, REQUEST_INPUT };
export const MAX_STEPS = 16;

const step: Schema = obj(
  "One step: runs an InferenceModel or a built-in processor on the outputs of earlier steps.",
  {
    name: dnsLabel("Name of the step, unique within the pipeline.", {
      "x-kubernetes-validations": [
        rule(`self != '${REQUEST_INPUT}'`, `'${REQUEST_INPUT}' is reserved for the pipeline's own input`),
      ],
    }),
    model: dnsLabel("InferenceModel (same namespace) this step runs. Exactly one of model and processor."),
    processor: str(
      "Built-in processor this step runs. Exactly one of model and processor. `image-to-tensor` " +
        "decodes and resizes an image into a normalized tensor; `detect-crop` turns a detection map into " +
        "cropped text-line tensors; `ctc-decode` decodes CTC logits into text with a character " +
        "dictionary; `softmax-argmax` picks the top class; `tokenize` turns text into token ids; " +
        "`mean-pool` averages token embeddings into one vector.",
      { enum: [...PROCESSORS] },
    ),
    parameters: stringMap(
      'Settings of the processor, e.g. `height: "48"` for image-to-tensor or `dictionary: npm://...` ' +
        "for ctc-decode. Not allowed on model steps. At most 16, names up to 63 characters, values up " +
        "to 512 (they are copied into the namespace's runtime ConfigMap, which holds at most 1 MiB).",
      {
        maxProperties: 16,
        "x-kubernetes-validations": [
          rule("self.all(k, k.size() <= 63)", "parameter names must be at most 63 characters"),
        ],
      },
      { type: "string", maxLength: 512 },
    ),
    dependsOn: list(
      "Steps that must finish before this one starts. Unset: the previous step (none for the first " +
        "step). `[]` starts the step right away on the request. Only steps listed earlier may be " +
        "named, which keeps the graph acyclic.",
      dnsLabel("Name of an earlier step."),
      { maxItems: MAX_STEPS, "x-kubernetes-list-type": "set" },
    ),
    inputFrom: dnsLabel(
      `Whose outputs this step consumes: one of its dependencies, or \`${REQUEST_INPUT}\` for the ` +
        "pipeline's request. Unset: the outputs of all its dependencies, merged by tensor name (the " +
        "request when it has none).",
    ),
    maxOutputTokens: positive(
      "Overrides the model's tokens.maxOutputTokens for this step when reserving tokens.",
      1_000_000,
    ),
  },
  {
    required: ["name"],
    "x-kubernetes-validations": [
      rule("has(self.model) != has(self.processor)", "each step must set exactly one of model or processor"),
      rule("!has(self.parameters) || has(self.processor)", "parameters may only be set on processor steps"),
      rule("!has(self.maxOutputTokens) || has(self.model)", "maxOutputTokens may only be set on model steps"),
    ],
  },
);

const spec: Schema = obj(
  "Desired pipeline.",
  {
    steps: list("Steps in order. A request flows through them as a dataflow over queues.", step, {
      minItems: 1,
      maxItems: MAX_STEPS,
      "x-kubernetes-validations": [
        rule("self.all(s, self.exists_one(t, t.name == s.name))", "step names must be unique"),
        rule("self.exists(s, has(s.model))", "a pipeline needs at least one model step"),
        rule(
          "self.all(i, s, !has(s.dependsOn) || s.dependsOn.all(d, self.exists(j, t, j < i && t.name == d)))",
          "dependsOn may only name steps listed earlier in spec.steps",
        ),
        rule(
          `self.all(i, s, !has(s.inputFrom) || s.inputFrom == '${REQUEST_INPUT}' || ` +
            "(has(s.dependsOn) ? s.inputFrom in s.dependsOn : i > 0 && self[i - 1].name == s.inputFrom))",
          `inputFrom must be '${REQUEST_INPUT}' or one of the step's dependencies (its dependsOn, or the ` +
            "previous step when dependsOn is unset)",
        ),
      ],
    }),
    shadow: obj(
      "Mirror a share of one model step's inputs to another InferenceModel; its outputs are recorded " +
        "for comparison and never returned. Shadow traffic is not charged to the tenant.",
      {
        step: dnsLabel("Name of the model step whose inputs are mirrored."),
        model: dnsLabel("InferenceModel (same namespace) that receives the copies."),
        percent: int32("Share of requests mirrored, in percent.", { minimum: 1, maximum: 100, default: 100 }),
      },
      { required: ["step", "model"] },
    ),
  },
  {
    required: ["steps"],
    "x-kubernetes-validations": [
      rule(
        "!has(self.shadow) || self.steps.exists(s, s.name == self.shadow.step && has(s.model))",
        "shadow.step must name a model step of this pipeline",
      ),
      rule(
        "!has(self.shadow) || !self.steps.exists(s, s.name == self.shadow.step && has(s.model) && " +
          "s.model == self.shadow.model)",
        "shadow.model must differ from the model of the step it mirrors",
      ),
    ],
  },
);

const status: Schema = obj("Observed state of the pipeline, written by the operator.", {
  observedGeneration,
  conditions: conditions(
    "`Ready` is True only when every referenced InferenceModel is Ready; a missing model makes it " +
      "False with reason `ModelNotFound` and the names in its message.",
  ),
  steps: int32("Number of steps.", { minimum: 0 }),
  missingModels: list(
    "Referenced InferenceModels that do not exist in the namespace.",
    str("Name of a missing InferenceModel.", { maxLength: 63 }),
    { maxItems: MAX_STEPS + 1, "x-kubernetes-list-type": "set" },
  ),
  endpoint: str("URL of the pipeline's Open Inference Protocol v2 endpoint on the gateway.", {
    maxLength: 2048,
  }),
});

export const pipelineCrd = customResourceDefinition({
  names: { kind: PIPELINE_KIND, plural: "pipelines", singular: "pipeline", shortNames: ["tppl"] },
  schema: rootSchema(
    "Pipeline chains InferenceModels and built-in processors into one callable model; requests flow " +
      "through the steps as a dataflow over queues and are charged once, at the end.",
    spec,
    status,
    {
      "x-kubernetes-validations": [
        rule(
          "self.metadata.name.size() <= 63 && !self.metadata.name.contains('.')",
          "Pipeline names must be at most 63 characters and contain no dots: requests address a " +
            "pipeline by name and the runtime routes only DNS labels",
        ),
      ],
    },
  ),
  printerColumns: [
    { name: "Steps", type: "integer", jsonPath: ".status.steps", description: "Number of steps." },
    readyColumn,
    {
      name: "Missing",
      type: "string",
      jsonPath: ".status.missingModels",
      description: "Referenced InferenceModels that do not exist.",
      priority: 1,
    },
    ageColumn,
  ],
});
