-- An identity's LoRA may be an uploaded asset (kind 'lora') instead of a URL: at most one of lora_url and
-- lora_asset_id is set (the API and the pages enforce it).
ALTER TABLE identities ADD COLUMN lora_asset_id TEXT REFERENCES assets (id) ON DELETE SET NULL;
