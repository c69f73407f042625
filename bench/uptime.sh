#!/usr/bin/env bash
# Uptime engine benchmark (not run in CI): N HTTP monitors against one local
# target at a fixed interval for a while; reports probes/s, CPU and peak RSS
# of bulwark alone, the lag of each probe's start behind its scheduled slot
# (p50/p99/max over all probes, plus slots that had no probe at all), and
# database growth per hour.
#
#   bench/uptime.sh [N=1000] [INTERVAL_S=10] [DURATION_S=180]
#
# Needs: cargo (it builds `bulwark` and the target in release mode unless
# BULWARK_BIN and TARGET_BIN are given) and python3. No other service: the
# target is `crates/ops/examples/uptime_target.rs`, a one-thread keep-alive
# HTTP server, so the target's CPU is not bulwark's (its CPU is reported
# separately). Run it on a quiet machine; the `uptime` load average before
# and after is printed so noisy runs can be recognised.
#
# How lag is measured: the engine runs each monitor on wall-clock slots,
# `phase + k * interval` in unix ms, with phase = first 8 bytes of
# SHA-256(name) big-endian, modulo the interval in ms (`uptime::start_offset`).
# The `ts` of each line in logs/uptime.ndjson is the probe's start (taken
# before the request is made). So lag = (ts - phase) mod interval, computed
# here independently of the engine; a slot without any probe is counted as
# missed. Probes in the first and last interval of the run are left out.
set -euo pipefail
N=${1:-1000}
INTERVAL=${2:-10}
DURATION=${3:-180}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BULWARK_BIN:-$TARGET_DIR/release/bulwark}
TBIN=${TARGET_BIN:-$TARGET_DIR/release/examples/uptime_target}

command -v python3 >/dev/null || { echo "bench/uptime.sh: python3 is required" >&2; exit 2; }
if [ -z "${BULWARK_BIN:-}" ] || [ -z "${TARGET_BIN:-}" ]; then
  command -v cargo >/dev/null || { echo "bench/uptime.sh: cargo is required (or set BULWARK_BIN and TARGET_BIN)" >&2; exit 2; }
  (cd "$ROOT" && cargo build --release -q -p bulwark && cargo build --release -q -p bulwark-ops --example uptime_target)
fi
for b in "$BIN" "$TBIN"; do
  [ -x "$b" ] || { echo "bench/uptime.sh: $b not found or not executable" >&2; exit 2; }
done

WORK=$(mktemp -d)
TARGET_PID=""; BW_PID=""
cleanup() {
  if [ -n "$BW_PID" ]; then kill "$BW_PID" 2>/dev/null || true; fi
  if [ -n "$TARGET_PID" ]; then kill "$TARGET_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$TBIN" 127.0.0.1:0 >"$WORK/target.addr" &
TARGET_PID=$!
for _ in $(seq 50); do [ -s "$WORK/target.addr" ] && break; sleep 0.1; done
TADDR=$(head -n1 "$WORK/target.addr")
[ -n "$TADDR" ] || { echo "bench/uptime.sh: the target did not start" >&2; exit 2; }

for i in $(seq 1 "$N"); do
  printf '[[monitor]]\nname = "m%05d"\nurl = "http://%s/m%d"\ninterval = "%ss"\ntimeout = "5s"\n\n' "$i" "$TADDR" "$i" "$INTERVAL"
done > "$WORK/bulwark.toml"

BPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
ROLES_JSON='{"bench-admin":"admin"}' "$BIN" --config "$WORK/bulwark.toml" --data-dir "$WORK/data" \
  serve --listen "127.0.0.1:$BPORT" >/dev/null 2>"$WORK/serve.log" &
BW_PID=$!
# Warm-up: one interval plus startup, so every monitor has started.
for _ in $(seq 100); do
  python3 -c 'import urllib.request,sys; urllib.request.urlopen(sys.argv[1])' "http://127.0.0.1:$BPORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
kill -0 "$BW_PID" 2>/dev/null || { echo "bench/uptime.sh: bulwark exited:" >&2; cat "$WORK/serve.log" >&2; exit 2; }
sleep "$INTERVAL"
dbsize() { du -sb "$WORK/data/bulwark.db"* 2>/dev/null | awk '{s+=$1} END {print s+0}'; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
DB0=$(dbsize)
T0=$(date +%s.%N)
CPU0=$(ticks "$BW_PID"); TCPU0=$(ticks "$TARGET_PID")
sleep "$DURATION"
T1=$(date +%s.%N)
CPU1=$(ticks "$BW_PID"); TCPU1=$(ticks "$TARGET_PID")
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$BW_PID/status")
DB1=$(dbsize)
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
kill -TERM "$BW_PID"; wait "$BW_PID" || true
BW_PID=""

python3 - "$WORK/data/logs/uptime.ndjson" "$INTERVAL" "$N" "$T0" "$T1" "$((CPU1-CPU0))" "$((TCPU1-TCPU0))" "$HWM" "$((DB1-DB0))" "$LOAD0" "$LOAD1" "$(nproc)" <<'PY'
import collections, datetime, hashlib, json, sys
path, interval, n, t0, t1, ticks, tticks, hwm_kb, db, load0, load1, cores = sys.argv[1:]
interval_ms, n, t0, t1 = int(float(interval) * 1000), int(n), float(t0), float(t1)
ticks, tticks, hwm_kb, db = int(ticks), int(tticks), int(hwm_kb), int(db)
secs = t1 - t0
hz = 100  # USER_HZ: /proc/PID/stat counts CPU in 1/100 s
# Only probes whose slot lies well inside the measured span.
lo, hi = (t0 + float(interval)) * 1000, (t1 - float(interval)) * 1000
phase = {}
lags, seen, total, failed = [], collections.defaultdict(set), 0, 0
bad_lines = 0
for line in open(path):
    try:
        r = json.loads(line)
    except ValueError:
        bad_lines += 1  # e.g. a line cut short by a full disk
        continue
    ts = datetime.datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp() * 1000
    if t0 * 1000 <= ts < t1 * 1000:
        total += 1
        failed += not r["ok"]
    name = r["monitor"]
    if name not in phase:
        phase[name] = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % interval_ms
    lag = (round(ts) - phase[name]) % interval_ms
    slot = round(ts) - lag
    if lo <= slot < hi:
        lags.append(lag)
        seen[name].add(slot)
expected = 0
for i in range(1, n + 1):
    name = f"m{i:05d}"
    p = phase.get(name, int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % interval_ms)
    first = lo + ((p - lo) % interval_ms)
    expected += len(range(int(first), int(hi), interval_ms))
got = sum(len(s) for s in seen.values())
lags.sort()
q = lambda x: lags[min(len(lags) - 1, int(x * len(lags)))] if lags else float("nan")
print(f"monitors {n}  interval {interval}s  measured {secs:.0f}s  cores {cores}")
print(f"load average before {load0}, after {load1}")
print(f"probes {total} ({failed} failed), {total / secs:.1f} probes/s" + (f"; {bad_lines} unreadable log lines" if bad_lines else ""))
print(f"bulwark cpu {ticks / hz / secs * 100:.1f}% of one core (target {tticks / hz / secs * 100:.1f}%), peak rss {int(hwm_kb) / 1024:.1f} MiB")
print(f"start lag behind slot over {len(lags)} probes: p50 {q(0.5):.0f} ms, p99 {q(0.99):.0f} ms, max {lags[-1] if lags else float('nan'):.0f} ms; slots missed {expected - got} of {expected}")
print(f"database growth {int(db) / secs * 3600 / 1e6:.1f} MB/hour ({int(db) / secs * 86400 / n / 1e3:.1f} KB per monitor-day)")
PY
