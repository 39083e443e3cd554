-- Up Migration
-- The tenant's own API (GET /v1/requests, GET /v1/usage, DELETE /v1/requests/{id}):
-- 1. a request can end `cancelled` (the tenant cancelled it; it charges what ran);
-- 2. the request list is read newest first per tenant with a keyset cursor on (submitted_at, id):
--    this index serves it as one backward range scan whatever the table's size (a plain CREATE
--    INDEX: it blocks writes to `requests` while it builds, once, at upgrade);
-- 3. per-model daily usage, written in the same statement as tenant_usage, so "tokens by model
--    today / this month" is a few rows per model instead of a scan over the month's requests.

ALTER TABLE requests DROP CONSTRAINT requests_status_check;
ALTER TABLE requests ADD CONSTRAINT requests_status_check
  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled'));

CREATE INDEX requests_tenant_submitted_at_id_idx ON requests (tenant, submitted_at, id);

CREATE TABLE tenant_model_usage (
  tenant text NOT NULL,
  -- UTC day of the request's submission, as in tenant_usage.
  day date NOT NULL,
  target_kind text NOT NULL CHECK (target_kind IN ('model', 'pipeline')),
  target text NOT NULL,
  tokens bigint NOT NULL DEFAULT 0,
  requests bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant, day, target_kind, target)
);

-- Requests recorded before this migration count per model from their records.
INSERT INTO tenant_model_usage (tenant, day, target_kind, target, tokens, requests)
SELECT tenant, (submitted_at AT TIME ZONE 'UTC')::date, target_kind, target, sum(charged_tokens), count(*)
FROM requests
GROUP BY 1, 2, 3, 4;

-- Down Migration
DROP TABLE tenant_model_usage;
DROP INDEX requests_tenant_submitted_at_id_idx;
DELETE FROM requests WHERE status = 'cancelled';
ALTER TABLE requests DROP CONSTRAINT requests_status_check;
ALTER TABLE requests ADD CONSTRAINT requests_status_check
  CHECK (status IN ('queued', 'running', 'succeeded', 'failed'));
