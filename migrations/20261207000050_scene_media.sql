-- A scene may use an uploaded recording (asset kind 'audio') as its speech instead of TTS, and an uploaded
-- background image (asset kind 'background') behind the framed headshot in standard mode.
ALTER TABLE scenes ADD COLUMN speech_asset_id TEXT REFERENCES assets (id) ON DELETE SET NULL;
ALTER TABLE scenes ADD COLUMN background_asset_id TEXT REFERENCES assets (id) ON DELETE SET NULL;
