/** Labels and annotations Turnpike puts on what it creates, so children can be found and pruned. */

export const GROUP = "turnpike.dev";
export const FINALIZER = "turnpike.dev/cleanup";

export const LABELS = {
  managedBy: "app.kubernetes.io/managed-by",
  partOf: "app.kubernetes.io/part-of",
  component: "app.kubernetes.io/component",
  name: "app.kubernetes.io/name",
  /** Kind of the owning Turnpike resource, lowercase. */
  ownerKind: "turnpike.dev/owner-kind",
  /** Name of the owning Turnpike resource. */
  owner: "turnpike.dev/owner",
  /** metadata.generation of the owner when the child was last rendered. */
  ownerGeneration: "turnpike.dev/owner-generation",
} as const;

/** Hash of the rendered child, to skip applying what is already there (zero writes on resync). */
export const DESIRED_HASH = "turnpike.dev/desired-hash";

export interface OwnerRef {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  generation: number;
}

/** The labels every child of `owner` carries. */
export function childLabels(owner: OwnerRef, component: string): Record<string, string> {
  return {
    [LABELS.managedBy]: "turnpike",
    [LABELS.partOf]: "turnpike",
    [LABELS.component]: component,
    [LABELS.name]: owner.name,
    [LABELS.ownerKind]: owner.kind.toLowerCase(),
    [LABELS.owner]: owner.name,
    [LABELS.ownerGeneration]: String(owner.generation),
  };
}

/** The selector that finds every child of `owner` (stable across generations). */
export function ownerSelector(owner: Pick<OwnerRef, "kind" | "name">): Record<string, string> {
  return { [LABELS.ownerKind]: owner.kind.toLowerCase(), [LABELS.owner]: owner.name };
}

/** A controller ownerReference, so Kubernetes garbage-collects children with their owner. */
export function ownerReference(owner: OwnerRef) {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.name,
    uid: owner.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}
