-- Authentication: the admin password (argon2 PHC string), browser sessions and API tokens (SHA-256 of the secret).
CREATE TABLE admin_credentials (
    id BIGINT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);

-- A run may cover one scene (scene_id set) or the whole project (scene_id '').
ALTER TABLE runs ADD COLUMN scene_id TEXT NOT NULL DEFAULT '';
