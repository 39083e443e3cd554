/**
 * The tenant's own API, scoped to the authenticated tenant: GET /v1/usage, GET /v1/usage/daily,
 * GET /v1/requests (its records, newest first, keyset-paginated) and DELETE /v1/requests/{id}.
 * Another tenant's request is a 404, exactly like one that does not exist.
 *
 * Cancelling does not depend on how requests are queued: it sets a tenant-scoped marker in Redis
 * that a worker checks where it accepts a task (then skips it and publishes a `cancelled` result,
 * which the collector records and settles like any other), and tells generative workers to stop a
 * generation already running (the cancel fanout exchange).
 */
import type { FastifyInstance } from "fastify";
import { tenantKeys } from "../../shared/contracts/index.js";
import type { GatewayContext } from "../context.js";
import { ApiError } from "../errors.js";
import { parseDailyQuery, parseListQuery, encodeCursor } from "../tenant/tenant-query.js";
import { listItemView, usageView } from "../tenant/usage-view.js";
import { isFinal, requestView, type RequestState } from "../views.js";
import { readOwn } from "./requests.js";

type IdParams = { Params: { id: string } };
type QueryString = { Querystring: Record<string, unknown> };

/** Most in-flight request ids GET /v1/usage lists (the count is always exact). */
export const IN_FLIGHT_LISTED = 100;

/** Registers the tenant API's routes. */
export function tenantRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  app.get("/v1/usage", async (request) => {
    const tenant = request.tenant;
    const nowMs = Date.now();
    const day = new Date(nowMs).toISOString().slice(0, 10);
    const [quota, inFlight, byModel] = await Promise.all([
      unavailableOnError(() => ctx.quota.usage(tenant, nowMs), "reading the quota"),
      unavailableOnError(
        () => ctx.quota.inFlightRequests(tenant, IN_FLIGHT_LISTED, nowMs),
        "reading the quota",
      ),
      ctx.tenantRecords.usageByModel(tenant, `${day.slice(0, 7)}-01`, day),
    ]);
    return usageView({ tenant, nowMs, quota, inFlight, byModel });
  });

  app.get<QueryString>("/v1/usage/daily", async (request) => {
    const { from, to, days } = parseDailyQuery(request.query, Date.now());
    return { tenant: request.tenant, from, to, days: await ctx.tenantRecords.daily(request.tenant, days) };
  });

  app.get<QueryString>("/v1/requests", async (request) => {
    const query = parseListQuery(request.tenant, request.query);
    const page = await ctx.tenantRecords.list(query);
    return { data: page.rows.map(listItemView), nextCursor: page.next ? encodeCursor(page.next) : null };
  });

  app.delete<IdParams>("/v1/requests/:id", async (request, reply) => {
    const { id } = request.params;
    const tenant = request.tenant;
    finishedRefusal(await readOwn(ctx, id, tenant));
    const marker = tenantKeys(ctx.prefix, tenant).cancel(id.toLowerCase());
    await unavailableOnError(
      () => ctx.redis.set(marker, "tenant", "EX", ctx.env.TURNPIKE_REQUEST_STATE_TTL_SECONDS),
      "recording the cancellation",
    );
    // A generation already running stops only when its worker hears it; the marker covers the rest.
    await ctx.publisher
      .broadcastCancel(id.toLowerCase())
      .catch((err: unknown) =>
        request.log.warn({ err, requestId: id }, "could not broadcast a cancellation"),
      );
    // It may have ended while the marker was written: then the cancellation came too late.
    const state = await readOwn(ctx, id, tenant);
    finishedRefusal(state);
    return reply.code(202).send({ ...requestView(state), cancellation: "requested" });
  });
}

/** 409 request_finished for a request that already has its final status. */
function finishedRefusal(state: RequestState): void {
  if (!isFinal(state)) return;
  const status = state.record.status;
  throw new ApiError(
    "request_finished",
    `request ${state.id} already ended (${status}); only queued or running requests can be cancelled`,
    {},
    { details: { id: state.id, status } },
  );
}

async function unavailableOnError<T>(fn: () => Promise<T>, what: string): Promise<T> {
  try {
    return await fn();
  } catch (cause) {
    throw new ApiError("service_unavailable", `${what} failed; retry`, { "retry-after": 2 }, { cause });
  }
}
