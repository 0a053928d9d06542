-- How a scene's still is animated: `standard` (image-to-video, then lip-sync) or `fast` (one-step talking avatar).
ALTER TABLE scenes ADD COLUMN animation TEXT NOT NULL DEFAULT 'standard';
