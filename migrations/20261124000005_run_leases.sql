-- Runs are queued, then claimed by a worker with a lease (token + expiry) that it renews while it works.
-- A lease that is not renewed expires and any worker may take the run over.
ALTER TABLE runs ADD COLUMN lease_token TEXT;
ALTER TABLE runs ADD COLUMN lease_expires_at BIGINT;
CREATE INDEX runs_claim ON runs (status, lease_expires_at);
