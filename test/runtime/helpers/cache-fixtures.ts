/** What the result-cache tests read back: the collector's row of a request and the gateway's metrics. */
import type { GatewayFixture } from "./gateway-fixture.js";
import { eventually } from "./worker-fixtures.js";

/** The columns of a request row the cache decides. */
export interface CacheRow {
  cached: boolean;
  charged_tokens: string;
  steps: unknown[];
  status: string;
}

/** The request's row as the collector wrote it (waits until it exists). */
export async function requestRow(fx: GatewayFixture, id: string): Promise<CacheRow> {
  let found: CacheRow | undefined;
  await eventually(async () => {
    const answer = await fx.pool.query<CacheRow>(
      `SELECT cached, charged_tokens::text, steps, status FROM "${fx.schema}".requests WHERE id = $1`,
      [id],
    );
    found = answer.rows[0];
    return found !== undefined;
  });
  return found!;
}

/** A counter of the gateway's /metrics for one model (0 when it has no sample yet). */
export async function modelCounter(fx: GatewayFixture, name: string, model: string): Promise<number> {
  const text = await (await fetch(`${fx.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(`model="${model}"`));
  return line ? Number(line.split(" ").at(-1)) : 0;
}
