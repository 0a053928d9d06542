-- An identity may name its offline voice (a Piper voice such as en_US-joe-medium); NULL: the default voice.
ALTER TABLE identities ADD COLUMN local_voice TEXT;
