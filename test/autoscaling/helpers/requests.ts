/**
 * Echo requests for the autoscaling tests: each carries a sequence number that comes back in its
 * output and in its record, so a lost or doubled request is found by number.
 */
import type { ModelEnv } from "./model-env.js";

function body(seq: number, timeoutMs?: number): string {
  return JSON.stringify({
    inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [seq, 1, 2, 3] }],
    ...(timeoutMs ? { parameters: { timeout: timeoutMs } } : {}),
  });
}

function headers(env: ModelEnv, key: string, async: boolean): Record<string, string> {
  return {
    authorization: `Bearer ${env.inst.tenants[0]!.apiKey}`,
    "content-type": "application/json",
    "idempotency-key": key,
    ...(async ? { prefer: "respond-async" } : {}),
  };
}

/** Submits one asynchronous request (retried with its key on 503); returns the request id. */
export async function submit(env: ModelEnv, model: string, seq: number): Promise<string> {
  for (let attempt = 0; attempt < 120; attempt++) {
    const res = await fetch(`${env.gatewayUrl}/v2/models/${model}/infer`, {
      method: "POST",
      headers: headers(env, `${model}-${seq}`, true),
      body: body(seq),
      signal: AbortSignal.timeout(30_000),
    }).catch(() => undefined);
    const answer = (await res?.json().catch(() => ({}))) as { id?: string };
    if (res?.status === 202 && answer.id) return answer.id;
    // 404 too: a model applied a moment ago reaches the gateway with its next config reload.
    if (res && res.status !== 503 && res.status !== 409 && res.status !== 404) {
      throw new Error(`request ${model}#${seq} refused: ${res.status} ${JSON.stringify(answer)}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`request ${model}#${seq} never accepted`);
}

export interface SyncAnswer {
  status: number;
  seq?: number;
  ms: number;
}

/** One synchronous request that may wait up to `timeoutMs` for its answer. */
export async function inferSync(
  env: ModelEnv,
  model: string,
  seq: number,
  timeoutMs: number,
): Promise<SyncAnswer> {
  const started = Date.now();
  const res = await fetch(`${env.gatewayUrl}/v2/models/${model}/infer`, {
    method: "POST",
    headers: headers(env, `${model}-sync-${seq}-${started}`, false),
    body: body(seq, timeoutMs),
    signal: AbortSignal.timeout(timeoutMs + 30_000),
  });
  const answer = (await res.json()) as { outputs?: Array<{ data?: number[] }> };
  return { status: res.status, seq: answer.outputs?.[0]?.data?.[0], ms: Date.now() - started };
}

/** Final records (succeeded or failed) per request id: a count of 1 for each is exactly-once. */
export async function recordCounts(env: ModelEnv, ids: readonly string[]): Promise<Map<string, number>> {
  const answer = await env.inst.pool.query<{ id: string; n: number }>(
    `SELECT id::text AS id, count(*)::int AS n FROM "${env.inst.schema}".requests
     WHERE status IN ('succeeded', 'failed') AND id::text = ANY($1) GROUP BY id`,
    [ids],
  );
  return new Map(answer.rows.map((r) => [r.id, r.n]));
}
