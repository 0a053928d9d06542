-- A preview run renders with the local providers only ($0) and leaves the scenes' and project's outputs alone.
ALTER TABLE runs ADD COLUMN preview BIGINT NOT NULL DEFAULT 0;
