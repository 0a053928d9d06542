-- Consent on record before a person's likeness is trained: one record per identity (who consented, when, how: a
-- stored statement or recording as an asset of kind 'consent', and/or a note). It never goes to a provider.
CREATE TABLE identity_consents (
    identity_id TEXT PRIMARY KEY REFERENCES identities (id) ON DELETE CASCADE,
    consented_by TEXT NOT NULL,
    asset_id TEXT REFERENCES assets (id) ON DELETE SET NULL,
    note TEXT,
    consented_at BIGINT NOT NULL
);

-- LoRA trainings of an identity on Fal (step LORA_TRAINING): one row per `identity train`, its content key over
-- the usable photos' content and the settings, the outcome and cost. Logs name it as their run_id.
CREATE TABLE training_runs (
    id TEXT PRIMARY KEY,
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    content_key TEXT NOT NULL,
    steps BIGINT NOT NULL,
    photo_count BIGINT NOT NULL,
    cached BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    lora_url TEXT,
    lora_object TEXT,
    score DOUBLE PRECISION,
    error TEXT,
    owner TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX training_runs_identity ON training_runs (identity_id, created_at);
