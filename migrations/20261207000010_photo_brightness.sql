-- Photo vetting: the mean luma (0–255) of each reference photo's largest face, so a set's lighting variety can be
-- summarised. Null for photos analysed before this column existed (they are analysed again at the next listing).
ALTER TABLE identity_photos ADD COLUMN brightness DOUBLE PRECISION;
