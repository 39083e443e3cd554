/**
 * Building blocks shared by the Turnpike CustomResourceDefinitions: the JSON-schema subset that
 * Kubernetes accepts (structural OpenAPI v3 plus the x-kubernetes-* extensions), small builders
 * that keep every field's description next to its definition, and fragments reused by several
 * kinds (conditions, resource requirements, tolerations, object references).
 *
 * These sources are the single source of truth for crds/, operator/api/generated/ and docs/api.md:
 * run `npm run gen:crds` after editing them.
 */

export const GROUP = "turnpike.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const CATEGORY = "turnpike";

/** One CEL rule (x-kubernetes-validations entry). */
export interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
  fieldPath?: string;
  optionalOldSelf?: boolean;
}

/** The structural OpenAPI v3 subset that apiextensions.k8s.io/v1 accepts, with raw key names. */
export interface Schema {
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  description?: string;
  format?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: Schema;
  enum?: (string | number)[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  anyOf?: Schema[];
  "x-kubernetes-int-or-string"?: true;
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-map-type"?: "atomic" | "granular";
  "x-kubernetes-validations"?: ValidationRule[];
}

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  priority?: number;
  format?: string;
}

export interface CrdNames {
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  categories: string[];
}

export interface CrdVersion {
  name: string;
  served: boolean;
  storage: boolean;
  subresources: {
    status: Record<string, never>;
    scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
  };
  additionalPrinterColumns: PrinterColumn[];
  schema: { openAPIV3Schema: Schema };
}

/** apiextensions.k8s.io/v1 CustomResourceDefinition, as written to crds/. */
export interface CustomResourceDefinition {
  apiVersion: "apiextensions.k8s.io/v1";
  kind: "CustomResourceDefinition";
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    group: string;
    names: CrdNames;
    scope: "Namespaced";
    versions: CrdVersion[];
  };
}

// ---------------------------------------------------------------------------------------------
// Builders. Each takes the description first so no field can be declared without one.

type Extra = Omit<Schema, "type" | "description">;

export const str = (description: string, extra: Extra = {}): Schema => ({
  type: "string",
  description,
  ...extra,
});

export const int = (description: string, extra: Extra = {}): Schema => ({
  type: "integer",
  description,
  format: "int64",
  ...extra,
});

export const int32 = (description: string, extra: Extra = {}): Schema => ({
  type: "integer",
  description,
  format: "int32",
  ...extra,
});

export const bool = (description: string, extra: Extra = {}): Schema => ({
  type: "boolean",
  description,
  ...extra,
});

export const obj = (description: string, properties: Record<string, Schema>, extra: Extra = {}): Schema => ({
  type: "object",
  description,
  properties,
  ...extra,
});

export const list = (description: string, items: Schema, extra: Extra = {}): Schema => ({
  type: "array",
  description,
  items,
  ...extra,
});

export const stringMap = (
  description: string,
  extra: Extra = {},
  value: Schema = { type: "string" },
): Schema => ({
  type: "object",
  description,
  additionalProperties: value,
  ...extra,
});

export const rule = (
  celRule: string,
  message: string,
  extra: Omit<ValidationRule, "rule" | "message"> = {},
) => ({
  rule: celRule,
  message,
  ...extra,
});

// ---------------------------------------------------------------------------------------------
// Shared fragments.

/** RFC 1123 label: lower case alphanumerics and '-', starting and ending alphanumeric. */
export const DNS_LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/** A reference by name to an object in the same namespace (InferenceModel, Pipeline, step...). */
export const dnsLabel = (description: string, extra: Extra = {}): Schema =>
  str(description, { minLength: 1, maxLength: 63, pattern: DNS_LABEL_PATTERN, ...extra });

/** Positive counter with an upper bound that keeps arithmetic and CEL cost estimates sane. */
export const positive = (description: string, maximum = 1_000_000_000_000, extra: Extra = {}): Schema =>
  int(description, { minimum: 1, maximum, ...extra });

/** Quantity pattern used by core/v1 ResourceRequirements. */
const QUANTITY_PATTERN =
  "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$";

const quantityMap = (description: string): Schema => ({
  type: "object",
  description,
  maxProperties: 16,
  additionalProperties: {
    anyOf: [{ type: "integer" }, { type: "string" }],
    pattern: QUANTITY_PATTERN,
    "x-kubernetes-int-or-string": true,
  },
});

/** core/v1 ResourceRequirements (requests and limits), kept structural. */
export const resourceRequirements = (description: string, extra: Extra = {}): Schema =>
  obj(
    description,
    {
      requests: quantityMap(
        "Minimum compute resources each replica needs, e.g. `cpu: 500m`, `memory: 1Gi`. Defaults to the " +
          "limits when only limits are set.",
      ),
      limits: quantityMap("Maximum compute resources each replica may use, e.g. `cpu: 2`, `memory: 2Gi`."),
    },
    extra,
  );

/** core/v1 Toleration. */
export const toleration: Schema = obj(
  "A toleration, as in a Pod spec: lets replicas schedule onto nodes with a matching taint.",
  {
    key: str("Taint key the toleration applies to; empty with operator Exists matches every taint.", {
      maxLength: 316,
    }),
    operator: str("How key and value are compared: `Exists` (any value) or `Equal` (the default).", {
      enum: ["Exists", "Equal"],
    }),
    value: str("Taint value to match when operator is Equal; must be empty when operator is Exists.", {
      maxLength: 63,
    }),
    effect: str("Taint effect to match; empty matches every effect.", {
      enum: ["NoSchedule", "PreferNoSchedule", "NoExecute"],
    }),
    tolerationSeconds: int(
      "For effect NoExecute: how long a replica stays bound to a node after the taint appears. Unset " +
        "means forever.",
      { minimum: 0 },
    ),
  },
  {
    "x-kubernetes-validations": [
      rule(
        "!(has(self.operator) && self.operator == 'Exists' && has(self.value) && self.value != '')",
        "a toleration with operator Exists must not set a value",
      ),
      rule(
        "has(self.key) && self.key != '' || (has(self.operator) && self.operator == 'Exists')",
        "a toleration without a key must use operator Exists",
      ),
    ],
  },
);

/** metav1.Condition, as every kstatus-aware tool expects it. */
export const condition: Schema = obj(
  "One aspect of the object's current state (metav1.Condition).",
  {
    type: str("Condition type in CamelCase, e.g. `Ready`, `Progressing`, `Degraded`.", {
      maxLength: 316,
      pattern:
        "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    }),
    status: str("Whether the condition holds: `True`, `False` or `Unknown`.", {
      enum: ["True", "False", "Unknown"],
    }),
    observedGeneration: int("The metadata.generation the condition was computed from.", { minimum: 0 }),
    lastTransitionTime: str("When the condition last changed status.", { format: "date-time" }),
    reason: str("Machine-readable CamelCase reason for the last transition.", {
      minLength: 1,
      maxLength: 1024,
      pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    }),
    message: str("Human-readable details about the last transition; may be empty.", { maxLength: 32768 }),
  },
  { required: ["type", "status", "lastTransitionTime", "reason", "message"] },
);

export const conditions = (description: string): Schema =>
  list(description, condition, {
    maxItems: 16,
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
  });

export const observedGeneration = int(
  "The metadata.generation the operator last acted on; status is current when it equals metadata.generation.",
  { minimum: 0 },
);

/** Reference to one key of a Secret in the object's namespace. */
export const secretKeyRef = (description: string): Schema =>
  obj(
    description,
    {
      name: str("Name of the Secret, in the same namespace.", {
        minLength: 1,
        maxLength: 253,
        pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
      }),
      key: str("Key within the Secret's data.", {
        minLength: 1,
        maxLength: 253,
        pattern: "^[-._a-zA-Z0-9]+$",
        default: "apiKey",
      }),
    },
    { required: ["name"] },
  );

/** The root schema every kind shares: apiVersion, kind, metadata, spec and status. */
export const rootSchema = (
  kindDescription: string,
  spec: Schema,
  status: Schema,
  extra: Extra = {},
): Schema =>
  obj(
    kindDescription,
    {
      apiVersion: str(
        "Versioned schema of this representation of an object; `turnpike.dev/v1alpha1` for this version.",
      ),
      kind: str("REST resource this object represents.", {}),
      // The apiserver forbids anything but `type` here (not even a description).
      metadata: { type: "object" },
      spec,
      status,
    },
    { required: ["spec"], ...extra },
  );

/** Printer column for the Ready condition, as `kubectl get` shows it. */
export const readyColumn: PrinterColumn = {
  name: "Ready",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: "Whether the Ready condition is True, False or Unknown.",
};

export const ageColumn: PrinterColumn = {
  name: "Age",
  type: "date",
  jsonPath: ".metadata.creationTimestamp",
  description: "Time since the object was created.",
};

/** Assembles a namespaced, single-version CRD with the status subresource. */
export function customResourceDefinition(options: {
  names: Omit<CrdNames, "listKind" | "categories">;
  schema: Schema;
  printerColumns: PrinterColumn[];
  scale?: CrdVersion["subresources"]["scale"];
}): CustomResourceDefinition {
  const { names, schema, printerColumns, scale } = options;
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${names.plural}.${GROUP}`,
      labels: { "app.kubernetes.io/part-of": "turnpike" },
    },
    spec: {
      group: GROUP,
      names: {
        kind: names.kind,
        listKind: `${names.kind}List`,
        plural: names.plural,
        singular: names.singular,
        shortNames: names.shortNames,
        categories: [CATEGORY],
      },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: scale ? { status: {}, scale } : { status: {} },
          additionalPrinterColumns: printerColumns,
          schema: { openAPIV3Schema: schema },
        },
      ],
    },
  };
}
