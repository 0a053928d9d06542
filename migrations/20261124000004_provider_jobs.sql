-- Paid provider jobs by the content key of the step that needs them: a submitted job is resumed by its stored
-- id after a crash or restart instead of being submitted (and paid for) again.
CREATE TABLE provider_jobs (
    content_key TEXT NOT NULL,
    provider TEXT NOT NULL,
    state TEXT NOT NULL,
    remote_id TEXT,
    job TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (content_key, provider)
);
