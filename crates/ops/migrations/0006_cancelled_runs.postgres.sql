-- A run stopped by shutdown is recorded as 'cancelled'.
ALTER TABLE job_runs DROP CONSTRAINT job_runs_outcome_check;
ALTER TABLE job_runs ADD CONSTRAINT job_runs_outcome_check
    CHECK (outcome IN ('running', 'success', 'failure', 'abandoned', 'cancelled'));
