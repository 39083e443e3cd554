// Faults: restart RabbitMQ, Redis and PostgreSQL (hack/services.sh restart <service>) while ~1,000
// requests are in flight, plus sync and SSE clients and a steady trickle of new submissions.
// Restarting a shared service disturbs every other test running at the same time, so this file
// runs alone, after the parallel run (see the `serial` vitest project). For each outage: callers
// get prompt JSON 503s (p99 answer time measured), no process hangs, the processes reconnect by
// themselves or are restarted by the test acting as their supervisor (reported), and afterwards
// nothing is lost, duplicated or charged wrongly.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../harness/kube.js";
import { audit, QuotaSampler, waitForRecords, waitForSettled } from "./helpers/audit.js";
import { installation, type Installation } from "./helpers/installation.js";
import type { Supervisor } from "./helpers/processes.js";
import { writeRows, type FaultRow } from "./helpers/report-file.js";
import {
  expectClean,
  expectPromptAnswers,
  faultRow,
  outageStats,
  recordCount,
  until,
} from "./helpers/scenario.js";
import { Traffic, type SseOutcome } from "./helpers/traffic.js";

const run = promisify(execFile);
type Service = "rabbitmq" | "redis" | "postgres";

const rows: FaultRow[] = [];

afterAll(() => writeRows("service-restarts", rows));

/** Seconds each service stays down (RabbitMQ's own stop and boot already take ~20 s). */
const DOWN_SECONDS: Record<Service, number> = { redis: 3, postgres: 3, rabbitmq: 0 };

async function restart(service: Service): Promise<{ from: number; to: number }> {
  const from = Date.now();
  await run("bash", [`${repoRoot}/hack/services.sh`, "restart", service, String(DOWN_SECONDS[service])], {
    timeout: 240_000,
  });
  return { from, to: Date.now() };
}

/** How each role came through: reconnected in-process, or restarted by its supervisor. */
function reconnectReport(roles: Record<string, Supervisor>): string {
  return Object.entries(roles)
    .map(([name, s]) =>
      s.restarts.length === 0
        ? `${name} reconnected in-process`
        : `${name} exited (${s.restarts.map((r) => r.exit).join(", ")}) and was restarted by the test ${s.restarts.length}x`,
    )
    .join("; ");
}

/** Reads model readiness and a request's status every 200 ms until `until` settles; answers go to `traffic`. */
async function probe(
  traffic: Traffic,
  gateway: () => string | undefined,
  key: string,
  id: string,
  until: Promise<unknown>,
) {
  let done = false;
  void until.finally(() => (done = true)).catch(() => undefined);
  while (!done) {
    for (const path of ["/v2/models/echo/ready", `/v1/requests/${id}`]) {
      const url = gateway();
      if (!url) continue;
      const at = Date.now();
      try {
        const res = await fetch(`${url}${path}`, {
          headers: { authorization: `Bearer ${key}` },
          signal: AbortSignal.timeout(15_000),
        });
        await res.arrayBuffer().catch(() => undefined);
        traffic.answers.push({
          at,
          ms: Date.now() - at,
          status: res.status,
          // Every error answer names its code in this header, whatever the route's body shape.
          code: res.headers.get("turnpike-error-code") ?? undefined,
          kind: "poll",
        });
      } catch (error) {
        const hang = (error as Error).name === "TimeoutError";
        traffic.answers.push({
          at,
          ms: Date.now() - at,
          status: 0,
          code: hang ? "hang" : "no-answer",
          kind: "poll",
        });
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function faultWhileBusy(service: Service) {
  const inst: Installation = await installation({
    label: `rel-${service}`,
    echoBatching: { maxBatchSize: 16, maxDelayMs: 60 },
    tenants: [
      { name: "bulk", limits: { tokensPerDay: 10_000_000 } },
      { name: "capped", limits: { tokensPerDay: 700, concurrentRequests: 200 } },
    ],
  });
  try {
    const [bulk, capped] = inst.tenants as [(typeof inst.tenants)[0], (typeof inst.tenants)[0]];
    const roles = {
      gateway: inst.supervise("gateway", "gateway"),
      collector: inst.supervise("collector", "collector"),
    };
    await Promise.all([roles.gateway.current.ready, roles.collector.current.ready]);
    const traffic = new Traffic(`${inst.prefix}-t`, {
      gateways: () => (roles.gateway.url ? [roles.gateway.url] : []),
      retryDeadlineMs: 90_000,
    });
    const sampler = new QuotaSampler(inst);

    // 1,000 accepted requests wait for a throttled worker (~130/s), sync and SSE clients wait on
    // some, and a trickle of new submissions keeps arriving through the outage.
    await traffic.burst({
      tenants: [bulk, bulk, bulk, capped],
      concurrency: 48,
      count: 1_000,
      resendEvery: 10,
    });
    const worker = inst.supervise("worker", "echo", { TURNPIKE_PREFETCH: "8" });
    const allRoles = { ...roles, worker };
    await worker.current.ready;
    const sync = traffic.burst({ tenants: [bulk], concurrency: 8, count: 8, mode: "sync" });
    const sse: Promise<SseOutcome[]> = Promise.all(
      traffic
        .accepted()
        .slice(-8)
        .map((r) => traffic.follow([...r.ids][0]!, r.tenant === "bulk" ? bulk : capped, 240_000)),
    );
    const trickle = traffic.stream({
      tenants: [bulk, capped],
      concurrency: 4,
      max: 2_000,
      pauseMs: 25,
      resendEvery: 10,
    });
    await until("the worker under way", async () => (await recordCount(inst)) >= 150);
    const inFlightAtFault = traffic.accepted().length - (await recordCount(inst));

    // Besides submissions: model readiness and request status are read throughout the outage.
    const restarting = restart(service);
    const probed = probe(
      traffic,
      () => roles.gateway.url,
      bulk.apiKey,
      [...traffic.acceptedIds()][0]!,
      restarting,
    );
    const outage = await restarting;
    await probed;
    // Back in service: a request sent now is accepted, run, recorded, and read back through the
    // gateway (its PostgreSQL or Redis read included). A fresh request of its own, because the
    // trickle may have nothing left to record once the collector has caught up.
    const fresh = await traffic.send(bulk, "async");
    const final = fresh.outcome === "accepted" ? await traffic.pollFinal(fresh, bulk) : undefined;
    if (final?.status !== "succeeded") {
      const tails = Object.entries(allRoles).map(
        ([role, s]) => `--- ${role}:\n${s.current.output().split("\n").slice(-15).join("\n")}`,
      );
      const lastAnswers = traffic.answers
        .slice(-5)
        .map((a) => `${a.kind} ${a.status} ${a.code ?? ""}`)
        .join("; ");
      throw new Error(
        `not back in service ${((Date.now() - outage.to) / 1000).toFixed(0)} s after ${service} was: a request ` +
          `sent then was ${fresh.outcome ?? "never answered"}${fresh.refusal ? ` (${fresh.refusal})` : ""}` +
          `${fresh.outcome === "accepted" ? `, and its status read ${final?.status ?? "never final"}` : ""}; ` +
          `last answers: ${lastAnswers}\n${tails.join("\n")}`,
      );
    }
    const backInServiceMs = Date.now() - outage.from;
    await trickle.stop();
    await sync;
    const missing = await waitForRecords(inst, traffic.acceptedIds(), 180_000);
    await waitForSettled(inst, 30_000);
    const recoveryMs = Date.now() - outage.from;
    const followed = await sse;
    sampler.stop();
    const result = await audit(inst, traffic, sampler);
    const stats = outageStats(traffic.answers, outage.from, outage.to);
    const syncWrong = traffic.requests.filter((r) => r.mode === "sync" && r.result?.seq !== r.seq);
    rows.push(
      faultRow(
        `restart ${service === "postgres" ? "PostgreSQL" : service === "redis" ? "Redis" : "RabbitMQ"}`,
        result,
        { inFlightAtFault, backInServiceMs, recoveryMs },
        {
          outage: stats,
          reconnect: reconnectReport(allRoles),
          notes:
            `outage ${((outage.to - outage.from) / 1000).toFixed(1)} s (hack/services.sh restart ${service}); ` +
            `8 sync and 8 SSE clients got their own result: ${syncWrong.length === 0 && followed.every((f) => f.results === 1)}; ` +
            `${result.failedRecords} failed records`,
        },
      ),
    );
    return { result, missing, outage, syncWrong, followed, traffic };
  } finally {
    // Gone before the next restart, so that each fault hits only its own installation.
    await inst.cleanup();
  }
}

describe.sequential("restarting the backing services under load", () => {
  for (const service of ["redis", "postgres", "rabbitmq"] as const) {
    it(`restart ${service}`, async () => {
      const { result, missing, outage, syncWrong, followed, traffic } = await faultWhileBusy(service);
      expect(missing).toEqual([]);
      expectClean(result);
      expectPromptAnswers(traffic.answers, outage.from, outage.to);
      expect(syncWrong.map((r) => r.key)).toEqual([]);
      expect(followed.filter((f) => f.results !== 1 || f.finalStatus !== "succeeded")).toEqual([]);
    }, 420_000);
  }
});
