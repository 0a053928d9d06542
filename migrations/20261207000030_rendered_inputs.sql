-- The fingerprint of the inputs a scene's / the project's recorded video was rendered from
-- (pipeline/fingerprint.rs): a differing current fingerprint shows the video as out of date.
ALTER TABLE scenes ADD COLUMN rendered_inputs TEXT;
ALTER TABLE projects ADD COLUMN rendered_inputs TEXT;
