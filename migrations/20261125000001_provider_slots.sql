-- Per-provider concurrency held across every worker process: a provider capped at N jobs uses slot rows
-- 0..N-1. A step takes a free (or expired) slot before it submits, renews its expiry while its job runs and
-- frees it when the job ends, so a crashed worker's slot comes back within one lease.
CREATE TABLE provider_slots (
    provider TEXT NOT NULL,
    slot INTEGER NOT NULL,
    holder TEXT,
    expires_at BIGINT,
    PRIMARY KEY (provider, slot)
);
