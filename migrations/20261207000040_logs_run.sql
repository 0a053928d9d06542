-- The run page reads one run's log rows.
CREATE INDEX logs_run ON logs (run_id, id);
