/**
 * metav1.Condition handling, kstatus-compatible: Ready / Progressing / Degraded, where
 * lastTransitionTime moves only when a condition's status really changes.
 */

export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export type ConditionInput = Omit<Condition, "lastTransitionTime">;

/**
 * Merges `updates` into `current`: a condition whose status is unchanged keeps its
 * lastTransitionTime; untouched conditions are kept; the result is sorted by type so that equal
 * states compare equal.
 */
export function mergeConditions(
  current: readonly Condition[] | undefined,
  updates: readonly ConditionInput[],
  now: Date = new Date(),
): Condition[] {
  const byType = new Map((current ?? []).map((c) => [c.type, c]));
  for (const update of updates) {
    const previous = byType.get(update.type);
    const lastTransitionTime =
      previous && previous.status === update.status
        ? previous.lastTransitionTime
        : now.toISOString().replace(/\.\d{3}Z$/, "Z");
    byType.set(update.type, { ...update, lastTransitionTime });
  }
  return [...byType.values()].sort((a, b) => a.type.localeCompare(b.type));
}

/** The three kstatus conditions for a resource that is ready. */
export function readyConditions(
  generation: number,
  message: string,
  reason = "Reconciled",
): ConditionInput[] {
  return [
    { type: "Ready", status: "True", reason, message, observedGeneration: generation },
    { type: "Progressing", status: "False", reason, message: "", observedGeneration: generation },
    { type: "Degraded", status: "False", reason, message: "", observedGeneration: generation },
  ];
}

/** Conditions for a resource whose children exist but are not yet serving. */
export function progressingConditions(generation: number, reason: string, message: string): ConditionInput[] {
  return [
    { type: "Ready", status: "False", reason, message, observedGeneration: generation },
    { type: "Progressing", status: "True", reason, message, observedGeneration: generation },
    { type: "Degraded", status: "False", reason, message: "", observedGeneration: generation },
  ];
}

/** Conditions for a resource that cannot be reconciled until something changes. */
export function degradedConditions(generation: number, reason: string, message: string): ConditionInput[] {
  return [
    { type: "Ready", status: "False", reason, message, observedGeneration: generation },
    { type: "Progressing", status: "False", reason, message: "", observedGeneration: generation },
    { type: "Degraded", status: "True", reason, message, observedGeneration: generation },
  ];
}

/** Finds a condition by type. */
export function findCondition(conditions: readonly Condition[] | undefined, type: string) {
  return conditions?.find((c) => c.type === type);
}

/**
 * The conditions of a live object's status. The generated API types declare lastTransitionTime as
 * a Date, but on the wire (and so in every object read from the apiserver) it is an RFC 3339 string.
 */
export function conditionsOf(
  object: { status?: { conditions?: unknown } } | undefined,
): Condition[] | undefined {
  return object?.status?.conditions as Condition[] | undefined;
}
