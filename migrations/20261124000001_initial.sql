-- Portable schema: the same statements run on SQLite and PostgreSQL.
-- Ids are UUIDv7 text, times are epoch milliseconds, booleans are 0/1 BIGINTs.
CREATE TABLE assets (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    object_key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    mime TEXT NOT NULL,
    width BIGINT,
    height BIGINT,
    duration_seconds DOUBLE PRECISION,
    original_name TEXT,
    folder TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    UNIQUE (kind, sha256)
);

CREATE TABLE identities (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    trigger_word TEXT NOT NULL UNIQUE,
    description TEXT,
    lora_url TEXT,
    lora_scale TEXT NOT NULL,
    base_model TEXT NOT NULL,
    voice_id TEXT,
    voice_model TEXT NOT NULL,
    voice_stability DOUBLE PRECISION NOT NULL,
    voice_similarity DOUBLE PRECISION NOT NULL,
    voice_style DOUBLE PRECISION NOT NULL,
    voice_speaker_boost BIGINT NOT NULL,
    headshot_asset_id TEXT REFERENCES assets (id) ON DELETE SET NULL,
    is_default BIGINT NOT NULL DEFAULT 0,
    is_active BIGINT NOT NULL DEFAULT 1,
    last_test_ok BIGINT,
    last_test_at BIGINT,
    last_test_result TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    aspect_ratio TEXT NOT NULL,
    default_identity_id TEXT REFERENCES identities (id) ON DELETE SET NULL,
    budget_usd DOUBLE PRECISION,
    status TEXT NOT NULL DEFAULT 'draft',
    final_object TEXT,
    captions_object TEXT,
    duration_seconds DOUBLE PRECISION,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE scenes (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    name TEXT NOT NULL,
    dialogue TEXT NOT NULL,
    environment TEXT,
    wardrobe TEXT,
    mood_lighting TEXT,
    camera TEXT,
    movement TEXT,
    target_duration DOUBLE PRECISION,
    identity_id TEXT REFERENCES identities (id) ON DELETE SET NULL,
    headshot_asset_id TEXT REFERENCES assets (id) ON DELETE SET NULL,
    generation_mode TEXT NOT NULL DEFAULT 'auto',
    status TEXT NOT NULL DEFAULT 'draft',
    output_object TEXT,
    thumbnail_object TEXT,
    duration_seconds DOUBLE PRECISION,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX scenes_project ON scenes (project_id, position);

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    owner TEXT,
    heartbeat_at BIGINT,
    error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX runs_project ON runs (project_id, status);

-- One row per DAG node of a run. scene_id is '' for the project's ASSEMBLE step.
CREATE TABLE steps (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    scene_id TEXT NOT NULL,
    step TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    provider TEXT,
    content_key TEXT,
    provider_task_id TEXT,
    output TEXT,
    cached BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    error TEXT,
    started_at BIGINT,
    finished_at BIGINT,
    UNIQUE (run_id, scene_id, step)
);

-- Finished step outputs by content key: the render cache.
CREATE TABLE step_cache (
    content_key TEXT PRIMARY KEY,
    step TEXT NOT NULL,
    provider TEXT NOT NULL,
    output TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE logs (
    id TEXT PRIMARY KEY,
    run_id TEXT,
    project_id TEXT,
    scene_id TEXT,
    step TEXT NOT NULL,
    level TEXT NOT NULL,
    provider TEXT,
    message TEXT NOT NULL,
    duration_ms BIGINT,
    payload TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX logs_scene ON logs (scene_id, id);
CREATE INDEX logs_project ON logs (project_id, id);
