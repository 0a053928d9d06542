-- Outbound webhooks: one URL and signing secret per project, and a durable outbox of deliveries.
ALTER TABLE projects ADD COLUMN webhook_url TEXT;
ALTER TABLE projects ADD COLUMN webhook_secret TEXT;

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    failed_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at);
