/**
 * GET /v1/requests/{id} and its Server-Sent Events stream. Both are tenant-scoped: another
 * tenant's request is a 404, exactly like a request that does not exist.
 *
 * The stream cannot miss the final event: it registers for the completion notice first, then reads
 * the state; whichever sees the final status first sends it, and only once. Events:
 * - `status` (id `status-<status>`): the request is not final yet; skipped when Last-Event-ID says
 *   the client already saw this status.
 * - `result` (id `result`): the final request document; the stream then ends. A reconnect with
 *   Last-Event-ID `result` gets 204, which tells EventSource to stop reconnecting.
 * - `timeout`: TURNPIKE_SSE_TIMEOUT_MS passed without a final status; the stream ends.
 * Heartbeat comments keep proxies from closing an idle stream; each one also re-reads the state,
 * so a notice lost during a Redis reconnect delays the final event but never drops it.
 */
import type { FastifyInstance } from "fastify";
import type { GatewayContext } from "../context.js";
import { ApiError } from "../errors.js";
import { isRequestId } from "../request-state.js";
import { isFinal, requestView, type RequestState } from "../views.js";

type IdParams = { Params: { id: string } };

/** Event id of the final event. */
export const RESULT_EVENT_ID = "result";

/** Formats one SSE event (JSON data carries no newlines). */
export function sseEvent(event: string, id: string | undefined, data: unknown): string {
  return `${id ? `id: ${id}\n` : ""}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Registers GET /v1/requests/{id} and /v1/requests/{id}/events. */
export function requestRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  app.get<IdParams>("/v1/requests/:id", async (request) => {
    const state = await readOwn(ctx, request.params.id, request.tenant);
    return requestView(state);
  });

  app.get<IdParams>("/v1/requests/:id/events", async (request, reply) => {
    const { id } = request.params;
    if (!isRequestId(id)) throw new ApiError("invalid_request_id", `${id} is not a request id`);
    const lastEventId = [request.headers["last-event-id"]].flat()[0];

    // Subscribe first, then read: a completion landing in between is caught by one or the other.
    const waiter = ctx.completions.wait(id);
    let state: RequestState;
    try {
      await ctx.hooks.afterSubscribe?.({ requestId: id, notice: waiter.notice });
      state = await readOwn(ctx, id, request.tenant);
    } catch (error) {
      waiter.cancel();
      throw error;
    }
    if (lastEventId === RESULT_EVENT_ID) {
      waiter.cancel();
      return reply.code(204).send();
    }

    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    raw.write("retry: 3000\n\n");

    let done = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = () => {
      if (done) return;
      done = true;
      for (const t of timers) clearInterval(t);
      waiter.cancel();
      ctx.streams.delete(finish);
      // On shutdown the keep-alive socket must not outlive the stream, or it holds the server open.
      raw.end(() => {
        if (!ctx.accepting) raw.socket?.destroy();
      });
    };
    raw.on("close", finish);
    ctx.streams.add(finish);
    const sendFinal = (final: RequestState) => {
      if (done) return;
      raw.write(sseEvent("result", RESULT_EVENT_ID, requestView(final)));
      finish();
    };
    // Re-reads the state; sends the final event if it is there. Errors end the stream cleanly.
    const recheck = async () => {
      try {
        const next = await ctx.states.read(id, request.tenant);
        if (next && isFinal(next)) sendFinal(next);
      } catch (error) {
        request.log.warn({ err: error }, "re-reading request state for SSE failed");
      }
    };

    if (isFinal(state)) return sendFinal(state);
    const statusId = `status-${state.kind === "pending" ? state.pending.status : state.record.status}`;
    if (lastEventId !== statusId) raw.write(sseEvent("status", statusId, requestView(state)));

    void waiter.notice.then(recheck);
    timers.push(
      setInterval(() => {
        if (done) return;
        raw.write(": heartbeat\n\n");
        void recheck();
      }, ctx.env.TURNPIKE_SSE_HEARTBEAT_MS),
    );
    timers.push(
      setTimeout(async () => {
        if (done) return;
        const last = await ctx.states.read(id, request.tenant).catch(() => undefined);
        if (last && isFinal(last)) return sendFinal(last);
        raw.write(
          sseEvent("timeout", undefined, {
            id,
            message: `no final status within ${ctx.env.TURNPIKE_SSE_TIMEOUT_MS} ms; reconnect or GET /v1/requests/${id}`,
          }),
        );
        finish();
      }, ctx.env.TURNPIKE_SSE_TIMEOUT_MS),
    );
  });
}

/** The state of a request the tenant owns, or a 404 (also for another tenant's). */
export async function readOwn(ctx: GatewayContext, id: string, tenant: string): Promise<RequestState> {
  if (!isRequestId(id)) throw new ApiError("invalid_request_id", `${id} is not a request id`);
  const state = await ctx.states.read(id, tenant);
  if (!state) throw new ApiError("request_not_found", `there is no request ${id}`);
  return state;
}
