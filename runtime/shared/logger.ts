/** One pino root logger per process; components take a child with their name on every line. */
import { pino, type Logger } from "pino";

const root = pino({
  level: process.env.TURNPIKE_LOG_LEVEL ?? "info",
  base: { role: process.env.TURNPIKE_ROLE },
  // Keys and tokens never reach a log line, even when an object carrying them is logged.
  redact: {
    paths: [
      "apiKey",
      "*.apiKey",
      "authorization",
      "*.authorization",
      "headers.authorization",
      "req.headers.authorization",
      "headers['x-api-key']",
      "req.headers['x-api-key']",
    ],
    censor: "[redacted]",
  },
});

/** A child logger for one component (and optionally one object, e.g. namespace/name). */
export function logger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return root.child({ component, ...bindings });
}

export type { Logger };
