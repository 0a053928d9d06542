-- An identity's reference photos (its headshot among them) and what the face engine found in each. A photo is
-- stored once per identity (same content, same row) and deleted with its identity. The analysis columns stay
-- null while it is pending (the face models were not installed when the photo was added); box, sharpness and
-- pose describe the largest face; the embedding (JSON array of 128 numbers) is kept only when the photo shows
-- exactly one face. An identity's face print is derived from these embeddings.
CREATE TABLE identity_photos (
    id TEXT PRIMARY KEY,
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    object_key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    mime TEXT NOT NULL,
    file_name TEXT NOT NULL,
    width BIGINT NOT NULL,
    height BIGINT NOT NULL,
    position BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    analysed_at BIGINT,
    face_count BIGINT,
    box_x BIGINT,
    box_y BIGINT,
    box_w BIGINT,
    box_h BIGINT,
    sharpness DOUBLE PRECISION,
    yaw DOUBLE PRECISION,
    pitch DOUBLE PRECISION,
    embedding TEXT,
    UNIQUE (identity_id, sha256)
);
