// Fault: kill -9 a gateway that holds open SSE streams while ~1,000 requests are in flight. Its
// SSE clients reconnect to the other gateway with Last-Event-ID and still get the final event
// (exactly once); submissions that were cut off are retried on the other gateway with the same
// Idempotency-Key and end up as one request each.
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { requestTenantKey, tenantKeys } from "../../runtime/shared/contracts/index.js";
import { audit, QuotaSampler, waitForRecords, waitForSettled } from "./helpers/audit.js";
import { ECHO_TOKENS } from "./helpers/installation.js";
import { faultSuite } from "./helpers/fault-suite.js";
import { expectClean, faultRow, outageStats, until } from "./helpers/scenario.js";
import { echoBody, Traffic } from "./helpers/traffic.js";

const STREAMS = 40;
let survivorUrl = "";
const suite = faultSuite("gateway-kill");
const { rows } = suite;

describe("kill -9 a gateway holding SSE streams", () => {
  it("lets every SSE client get its final event from the other gateway", async () => {
    const i = await suite.install({
      label: "rel-gateway",
      tenants: [
        { name: "bulk", limits: { tokensPerDay: 10_000_000 } },
        { name: "capped", limits: { tokensPerDay: 700 } },
      ],
    });
    const [bulk, capped] = i.tenants as [(typeof i.tenants)[0], (typeof i.tenants)[0]];
    const collector = i.supervise("collector", "collector");
    const doomed = i.supervise("gateway", "gateway-a");
    const survivor = i.supervise("gateway", "gateway-b");
    const [urlA, urlB] = await Promise.all([
      doomed.current.ready,
      survivor.current.ready,
      collector.current.ready,
    ]);
    // Clients know both addresses (as behind a Service); a dead one refuses and they move on.
    const traffic = new Traffic(`${i.prefix}-g`, { gateways: () => [urlA, urlB] });
    const streamsOnA = new Traffic(`${i.prefix}-s`, { gateways: () => [urlA] });
    const sampler = new QuotaSampler(i);

    // No worker yet: 1,000 requests accepted and waiting.
    await traffic.burst({
      tenants: [bulk, bulk, bulk, capped],
      concurrency: 48,
      count: 1_000,
      resendEvery: 10,
    });
    const watched = traffic.accepted().slice(0, STREAMS);
    // Every stream is opened on gateway-a and has seen its `status` event before the kill.
    let opened = 0;
    const follows = watched.map((r) => {
      const tenant = r.tenant === "bulk" ? bulk : capped;
      return streamsOnA.follow([...r.ids][0]!, tenant, 120_000, () => opened++);
    });
    // While the streams are open, more submissions are in flight on both gateways.
    const more = traffic.stream({ tenants: [bulk], concurrency: 8, max: 2_000, pauseMs: 10, resendEvery: 5 });
    await until("every SSE stream open on gateway-a", () => opened >= watched.length);
    const inFlightAtFault = traffic.accepted().length;
    const faultAt = Date.now();
    await doomed.kill9();
    // Reconnecting clients now only reach gateway-b (the restarted gateway-a has a new address).
    streamsOnA.retarget(() => [urlB]);
    await new Promise((r) => setTimeout(r, 2_000));
    await more.stop();
    const worker = i.supervise("worker", "echo");
    await worker.current.ready;
    await doomed.restart();
    await doomed.current.ready;
    const backInServiceMs = Date.now() - faultAt;
    const missing = await waitForRecords(i, traffic.acceptedIds(), 90_000);
    await waitForSettled(i, 30_000);
    const recoveryMs = Date.now() - faultAt;
    const sse = await Promise.all(follows);
    sampler.stop();
    const result = await audit(i, traffic, sampler);
    const reconnects = sse.reduce((n, s) => n + s.reconnects, 0);
    const cutOff = traffic.answers.filter((a) => a.at >= faultAt - 1_000 && a.status === 0).length;
    const repeatedStatus = sse.filter((s) => new Set(s.statuses).size !== s.statuses.length).length;
    rows.push(
      faultRow(
        "kill -9 a gateway holding SSE streams",
        result,
        { inFlightAtFault, backInServiceMs, recoveryMs },
        {
          outage: outageStats(traffic.answers, faultAt, faultAt + 5_000),
          reconnect:
            "SSE clients reconnected to the other gateway with Last-Event-ID; the killed gateway restarted by the test",
          notes:
            `${STREAMS} SSE streams open on the killed gateway: ${sse.filter((s) => s.results === 1).length} got exactly one ` +
            `final event after ${reconnects} reconnects in all, ${repeatedStatus} saw a status event twice; ` +
            `${cutOff} submissions cut off by the kill (no answer) were retried with their key on the other gateway`,
        },
      ),
    );

    expect(missing).toEqual([]);
    expectClean(result);
    expect(sse.filter((s) => s.results !== 1 || s.finalStatus !== "succeeded")).toEqual([]);
    expect(sse.every((s) => s.reconnects >= 1)).toBe(true);
    expect(repeatedStatus).toBe(0);
    survivorUrl = urlB;
  }, 240_000);

  // The window the kill above may or may not hit: a gateway that dies after marking a request
  // queued (and reserving its tokens) but before publishing it. Made here on purpose: the retry
  // with the same Idempotency-Key must adopt and enqueue it, not answer 202 for a request that
  // never runs and holds its reservation forever.
  it("has a retry enqueue a request whose gateway died before publishing it", async () => {
    const i = suite.current!;
    const tenant = i.tenants[0]!;
    const id = randomUUID();
    const key = "orphan-1";
    const submittedAt = Date.now() - 10_000;
    await i.redis.set(tenantKeys(i.prefix, tenant.name).idempotency(key), id, "EX", 600);
    await i.redis.set(
      requestTenantKey(i.prefix, id),
      JSON.stringify({
        tenant: tenant.name,
        target: { kind: "model", name: "echo" },
        status: "queued",
        submittedAt,
      }),
      "EX",
      600,
    );
    expect(await i.quota.reserve(tenant.name, id, ECHO_TOKENS.reserved, submittedAt)).toEqual({ ok: true });

    const res = await fetch(`${survivorUrl}/v2/models/echo/infer`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${tenant.apiKey}`,
        "content-type": "application/json",
        "idempotency-key": key,
        prefer: "respond-async",
      },
      body: echoBody(424_242, "async"),
    });
    expect(res.status).toBe(202);
    expect(((await res.json()) as { id: string }).id).toBe(id);
    expect(await waitForRecords(i, [id], 30_000)).toEqual([]);
    expect(await waitForSettled(i, 10_000)).toBe(true);
    const usage = await i.quota.usage(tenant.name);
    const charged = await i.pool.query<{ c: number }>(
      `SELECT sum(charged_tokens)::float8 AS c FROM "${i.schema}".requests WHERE tenant = $1`,
      [tenant.name],
    );
    expect(usage.tokensToday).toBe(charged.rows[0]!.c);
  }, 60_000);
});
