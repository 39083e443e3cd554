/**
 * What a kind's onGiveUp does when retries are exhausted: Degraded with the error's message (and
 * a Warning Event), so `kubectl get` shows why instead of a silent stale status.
 */
import type { GenericClass } from "kubernetes-fluent-client";
import { degradedConditions, findCondition, mergeConditions, type Condition } from "./conditions.js";
import { describeError, permanentCause } from "./errors.js";
import { warn } from "./events.js";
import { getOrUndefined } from "./objects.js";
import { writeStatusIfChanged } from "./status.js";

export async function recordGiveUp(
  model: GenericClass,
  namespace: string,
  name: string,
  error: unknown,
): Promise<void> {
  const object = await getOrUndefined(model, namespace, name);
  if (!object || object.metadata?.deletionTimestamp) return;
  const status = ((object as { status?: Record<string, unknown> }).status ?? {}) as Record<string, unknown>;
  const generation = object.metadata?.generation ?? 0;
  const reason = permanentCause(error)?.reason ?? "ReconcileFailed";
  const message = describeError(error);
  const current = status.conditions as Condition[] | undefined;
  const previous = findCondition(current, "Degraded");
  const conditions = mergeConditions(current, degradedConditions(generation, reason, message));
  await writeStatusIfChanged(model, object, { ...status, conditions });
  if (previous?.status !== "True" || previous.message !== message) await warn(object, reason, message);
}
