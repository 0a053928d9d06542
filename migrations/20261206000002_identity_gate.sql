-- A project's identity gate (what IMAGE does when a generated still does not look like the identity:
-- `off`, `warn`, `retry` or `strict`) and how many extra paid stills it may generate per scene (0–5).
ALTER TABLE projects ADD COLUMN identity_gate TEXT NOT NULL DEFAULT 'retry';
ALTER TABLE projects ADD COLUMN identity_retries BIGINT NOT NULL DEFAULT 2;
