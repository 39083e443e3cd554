/**
 * Process settings common to every runtime role, read from the environment once at start-up,
 * validated with defaults. A bad value stops the process with a message naming the variable.
 */
import { z } from "zod";

export const commonEnvSchema = z.object({
  /** Path of the runtime config file (the operator's ConfigMap, mounted). */
  TURNPIKE_CONFIG: z.string().min(1).default("/etc/turnpike/runtime.json"),
  TURNPIKE_AMQP_URL: z.string().url().default("amqp://turnpike:turnpike@127.0.0.1:5672"),
  TURNPIKE_REDIS_URL: z.string().url().default("redis://127.0.0.1:6379"),
  TURNPIKE_DATABASE_URL: z.string().url().default("postgres://turnpike:turnpike@127.0.0.1:5432/turnpike"),
  /** PostgreSQL schema holding Turnpike's tables (tests use one per test). */
  TURNPIKE_DB_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/, "must be a plain lowercase SQL identifier")
    .default("turnpike"),
  /** Port of the role's HTTP server (API on the gateway; /metrics and health everywhere). */
  TURNPIKE_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  TURNPIKE_HOST: z.string().default("0.0.0.0"),
});

export type CommonEnv = z.infer<typeof commonEnvSchema>;

/** Parses `env` with `schema`, throwing one error that names every bad variable. */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `  - ${i.path.join(".")}: ${i.message}`);
    throw new Error(`invalid environment:\n${problems.join("\n")}`);
  }
  return result.data;
}
