/**
 * How a worker that cannot start tells the operator why: its process writes `<Reason>: <message>`
 * to the container's termination message file, which the kubelet copies into the Pod's container
 * status; the operator turns the reasons below into the model's Degraded condition.
 */

/** Reasons the operator reports as they are (anything else stays a rollout problem). */
export const START_FAILURE_REASONS = ["ModelDownloadFailed", "ModelChecksumMismatch"] as const;
export type StartFailureReason = (typeof START_FAILURE_REASONS)[number];

/** The reason and message of a termination message, when it carries a known reason. */
export function parseStartFailure(
  text: string | undefined,
): { reason: StartFailureReason; message: string } | undefined {
  const match = /^([A-Za-z]+): ([\s\S]*)$/.exec(text?.trim() ?? "");
  const reason = match?.[1] as StartFailureReason | undefined;
  if (!match || !reason || !START_FAILURE_REASONS.includes(reason)) return undefined;
  return { reason, message: match[2]!.trim() };
}
