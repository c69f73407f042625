-- Hourly rollups: per-minute rollups older than the per-minute retention
-- (35 days, or the longest SLO window plus a day) are folded into one row
-- per monitor and hour, kept 400 days. Counts add up exactly; latency p50
-- is the probe-weighted mean of the minutes' p50, p95/p99 the worst
-- minute's, max the maximum.
CREATE TABLE probe_rollups_hourly (
    monitor        TEXT NOT NULL,
    hour           BIGINT NOT NULL,
    total          BIGINT NOT NULL,
    failures       BIGINT NOT NULL,
    latency_p50_ms BIGINT NOT NULL,
    latency_p95_ms BIGINT NOT NULL,
    latency_p99_ms BIGINT NOT NULL,
    latency_max_ms BIGINT NOT NULL,
    PRIMARY KEY (monitor, hour)
);
-- Pruning by age scans hours, not monitors.
CREATE INDEX probe_rollups_hourly_hour ON probe_rollups_hourly (hour);
