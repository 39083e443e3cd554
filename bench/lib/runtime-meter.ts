/**
 * The CPU meter of one Turnpike installation under load: its gateway, worker and collector, then
 * RabbitMQ, Redis and PostgreSQL. The roles are read again at every sample, so a role the caller
 * restarts (a new worker, a new collector) is followed.
 */
import { CpuMeter, type ChildHandle } from "./processes.js";

/** A started runtime role: anything holding its process handle. */
interface Role {
  handle: Pick<ChildHandle, "pid">;
}

export function runtimeMeter(roles: () => { gateway: Role; worker: Role; collector: Role }): CpuMeter {
  return new CpuMeter()
    .track("gateway", () => [roles().gateway.handle.pid])
    .track("worker", () => [roles().worker.handle.pid])
    .track("collector", () => [roles().collector.handle.pid])
    .trackServices();
}
