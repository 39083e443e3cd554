-- Up Migration
-- Turnpike's durable records: one row per finished request and per-tenant daily usage.
-- Runs with search_path set to the installation's schema (see runtime/shared/db/migrate.ts), so
-- the names below are unqualified on purpose.

CREATE TABLE requests (
  -- The request id doubles as the AMQP message id: redelivered results hit this key and change nothing.
  id uuid PRIMARY KEY,
  tenant text NOT NULL,
  target_kind text NOT NULL CHECK (target_kind IN ('model', 'pipeline')),
  target text NOT NULL,
  status text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  reserved_tokens bigint NOT NULL CHECK (reserved_tokens >= 0),
  input_tokens bigint NOT NULL CHECK (input_tokens >= 0),
  output_tokens bigint NOT NULL CHECK (output_tokens >= 0),
  -- What the quota was settled with (see charged-tokens.ts); kept so a redelivery settles the same amount.
  charged_tokens bigint NOT NULL CHECK (charged_tokens >= 0),
  outputs jsonb,
  error_code text,
  error_message text,
  submitted_at timestamptz NOT NULL,
  finished_at timestamptz,
  -- Totals over the route, for SQL reporting; `steps` keeps the per-step detail.
  queue_ms double precision NOT NULL DEFAULT 0,
  infer_ms double precision NOT NULL DEFAULT 0,
  steps jsonb NOT NULL DEFAULT '[]'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- "What did tenant X run lately" and usage reports scan by tenant over a time range.
CREATE INDEX requests_tenant_finished_at_idx ON requests (tenant, finished_at);

CREATE TABLE tenant_usage (
  tenant text NOT NULL,
  -- UTC day of the request's submission: the same day window the Redis quota reserved against.
  day date NOT NULL,
  tokens bigint NOT NULL DEFAULT 0,
  requests bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant, day)
);

-- Down Migration
DROP TABLE tenant_usage;
DROP TABLE requests;
