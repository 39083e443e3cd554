-- Up Migration
-- Requests answered from the result cache (InferenceModel spec.cache): no worker ran them.
ALTER TABLE requests ADD COLUMN cached boolean NOT NULL DEFAULT false;

-- Down Migration
ALTER TABLE requests DROP COLUMN cached;
