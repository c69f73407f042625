#!/usr/bin/env bash
# Uptime engine benchmark (not run in CI): N HTTP monitors against one local
# target at a fixed interval for a while; reports probes/s, CPU, peak RSS,
# schedule lag (p99 of the gap between a monitor's consecutive probes minus
# the interval) and database growth per hour.
#
#   bench/uptime.sh [N=1000] [INTERVAL_S=10] [DURATION_S=180]
#
# Needs a release build (cargo build --release) and python3.
set -euo pipefail
N=${1:-1000}
INTERVAL=${2:-10}
DURATION=${3:-180}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BULWARK_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/bulwark}
WORK=$(mktemp -d)
trap 'kill $TARGET_PID $BW_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

# The target: a threaded HTTP server answering 200 on every path.
TPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$TPORT" <<'PY' &
import sys, http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200); self.send_header("content-length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
TARGET_PID=$!

for i in $(seq 1 "$N"); do
  printf '[[monitor]]\nname = "m%05d"\nurl = "http://127.0.0.1:%s/m%d"\ninterval = "%ss"\ntimeout = "5s"\n\n' "$i" "$TPORT" "$i" "$INTERVAL"
done > "$WORK/bulwark.toml"

BPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ROLES_JSON='{"bench-admin":"admin"}' "$BIN" --config "$WORK/bulwark.toml" --data-dir "$WORK/data" \
  serve --listen "127.0.0.1:$BPORT" >/dev/null 2>"$WORK/serve.log" &
BW_PID=$!
sleep 2
DB0=$(du -sb "$WORK/data" | cut -f1)
T0=$(date +%s)
CPU0=$(awk '{print $14+$15}' /proc/$BW_PID/stat)
sleep "$DURATION"
T1=$(date +%s)
CPU1=$(awk '{print $14+$15}' /proc/$BW_PID/stat)
HWM=$(awk '/VmHWM/ {print $2}' /proc/$BW_PID/status)
DB1=$(du -sb "$WORK/data" | cut -f1)
kill -TERM $BW_PID; wait $BW_PID || true

python3 - "$WORK/data/logs/uptime.ndjson" "$INTERVAL" "$N" "$((T1-T0))" "$((CPU1-CPU0))" "$HWM" "$((DB1-DB0))" <<'PY'
import json, sys, datetime, collections
path, interval, n, secs, ticks, hwm_kb, db = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
by = collections.defaultdict(list); total = 0; failed = 0
for line in open(path):
    r = json.loads(line); total += 1; failed += (not r["ok"])
    by[r["monitor"]].append(datetime.datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp())
lags = sorted(max(0.0, b - a - interval) for ts in by.values() for a, b in zip(sorted(ts), sorted(ts)[1:]))
p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))] * 1000 if lags else float("nan")
print(f"monitors {n}  interval {interval:.0f}s  measured {secs}s")
print(f"probes {total} ({failed} failed), {total / max(secs, 1):.1f} probes/s")
print(f"cpu {ticks / 100 / max(secs, 1) * 100:.1f}% of one core, peak rss {hwm_kb / 1024:.1f} MiB")
print(f"schedule lag p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms")
print(f"database growth {db / max(secs, 1) * 3600 / 1e6:.1f} MB/hour")
PY
