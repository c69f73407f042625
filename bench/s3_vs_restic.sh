#!/usr/bin/env bash
# Bulwark against restic on S3, emulated by moto, same dataset, same machine.
#
#   bench/s3_vs_restic.sh [DATASET_DIR] [OUTPUT_MD]
#   bench/s3_vs_restic.sh --linux [OUTPUT_MD]
#
# Starts its own moto_server on a free loopback port and, for each tool
# (bulwark's release build, /usr/bin/restic), runs: init, first backup,
# no-change backup, full restore (checked with `diff -r`) and
# `check --read-data`, each against a bucket of its own and with
# `--no-cache` (a cold client, every metadata file fetched from the store),
# then a no-change backup with a warm cache (after one unmeasured backup
# that fills it). Both tools use their default number of connections. Each
# operation runs BENCH_RUNS times (default 2), the tools alternating.
#
# Measured per operation: wall time, CPU time (user + system) and peak RSS
# of the tool (/usr/bin/time); moto's CPU time (utime + stime deltas of
# /proc/PID/stat), the emulator being a Python process that competes for
# the same cores; and the number of HTTP requests, counted from the lines
# moto's (werkzeug's) request log writes to stderr, one per request. The
# table shows the run with the best wall time and its other figures, and
# the highest peak RSS of the runs. Finally one bulwark first backup with
# `-o connections=1`, for the effect of parallel uploads.
#
# The default dataset is a fixed set of versioned crate sources from
# ~/.cargo/registry/src (about 200 MiB, copied once to BENCH_S3_DATASET,
# default ~/.cache/bulwark-bench/s3-crates): big enough to make packs,
# small enough for an emulator that keeps every object in memory. Writes
# its section of OUTPUT_MD (default docs/benchmarks.md) between markers.
# `--linux` uses the Linux 6.1 source tree (bench/linux_tree.sh fetches it
# once; moto then holds about 300 MB of packs in memory) and writes its
# own section.
# Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."

marker=s3-vs-restic
if [ "${1:-}" = --linux ]; then
    shift
    set -- "$(bench/linux_tree.sh)" "$@"
    marker=s3-vs-restic-linux
fi
out=${2:-docs/benchmarks.md}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bulwark-target}"
crates="aws-lc-sys-0.47.0 windows-sys-0.52.0 windows-sys-0.48.0 libsqlite3-sys-0.30.1
linux-raw-sys-0.12.1 web-sys-0.3.107 tracing-0.1.44 ring-0.17.14 chrono-tz-0.10.4
tokio-1.54.1 libc-0.2.191"

if [ -n "${1:-}" ]; then
    dataset=$(realpath "$1")
else
    dataset=${BENCH_S3_DATASET:-$HOME/.cache/bulwark-bench/s3-crates}
    if [ ! -d "$dataset" ]; then
        registry=$(find "$HOME/.cargo/registry/src" -mindepth 1 -maxdepth 1 -type d | head -n 1)
        tmp=$(mktemp -d "$(dirname "$dataset")/.s3-crates.XXXXXX" 2>/dev/null ||
            { mkdir -p "$(dirname "$dataset")" && mktemp -d "$(dirname "$dataset")/.s3-crates.XXXXXX"; })
        for c in $crates; do
            [ -d "$registry/$c" ] || { echo "crate source $registry/$c is missing: pass a DATASET_DIR" >&2; exit 2; }
            cp -a "$registry/$c" "$tmp/"
        done
        mv "$tmp" "$dataset"
    fi
fi

command -v restic >/dev/null || { echo "restic is not installed (scripts/test.sh installs it)" >&2; exit 2; }
command -v moto_server >/dev/null || { echo "moto_server is not installed (pip install 'moto[server]')" >&2; exit 2; }
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null

cargo build --release -p bulwark >&2
bulwark="$CARGO_TARGET_DIR/release/bulwark"

work=$(mktemp -d "${BENCH_TMP:-/tmp}/bulwark-s3-bench.XXXXXX")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>"$work/moto.log" &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null; wait "$moto_pid" 2>/dev/null; rm -rf "$work"' EXIT
endpoint="http://127.0.0.1:$port"
for _ in $(seq 1 120); do
    curl -fs -o /dev/null "$endpoint/" && break
    sleep 0.5
done
curl -fs -o /dev/null "$endpoint/" || { echo "moto did not start:" >&2; cat "$work/moto.log" >&2; exit 1; }

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export RESTIC_PASSWORD=bench-password BULWARK_PASSWORD=bench-password
export RESTIC_CACHE_DIR="$work/restic-cache" XDG_CACHE_HOME="$work/xdg-cache"

# Warm the page cache so neither tool pays for the first read of the dataset.
tar -cf - -C "$dataset" . >/dev/null

runs=${BENCH_RUNS:-2}
ticks=$(getconf CLK_TCK)
declare -A wall cpu rss moto reqs bin
bin[restic]=restic
bin[bulwark]=$bulwark
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

moto_ticks() { awk '{ print $14 + $15 }' "/proc/$moto_pid/stat"; }
# One line per request: `127.0.0.1 - - [date] "PUT /bucket/key HTTP/1.1" 200 -`.
requests() { grep -cE '"[A-Z]+ [^ ]+ HTTP/[0-9.]+" [0-9]{3} ' "$work/moto.log" || true; }

# One run of `command` as `key`; keeps the best wall time with that run's
# CPU times and request count, and the highest RSS over the runs.
measure() { # key command...
    local key=$1; shift
    local t0 r0 w u s r m n
    t0=$(moto_ticks); r0=$(requests)
    if ! /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" >"$work/$key.out" 2>"$work/$key.err"; then
        echo "$key failed:" >&2; tail -n 20 "$work/$key.err" >&2; exit 1
    fi
    # The log line of the last response may trail the response itself.
    sleep 0.3
    read -r w u s r <"$work/time"
    m=$(awk -v a="$t0" -v b="$(moto_ticks)" -v t="$ticks" 'BEGIN { printf "%.2f", (b - a) / t }')
    n=$(( $(requests) - r0 ))
    echo "$key: $w s wall, $u+$s s CPU, $(( r / 1024 )) MiB, moto $m s CPU, $n requests" >&2
    if [ -z "${wall[$key]:-}" ] || awk -v a="$w" -v b="${wall[$key]}" 'BEGIN { exit !(a < b) }'; then
        wall[$key]=$w
        cpu[$key]=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
        moto[$key]=$m
        reqs[$key]=$n
    fi
    if [ -z "${rss[$key]:-}" ] || [ "$r" -gt "${rss[$key]}" ]; then rss[$key]=$r; fi
}

repo_of() { echo "s3:$endpoint/$1/repo"; }

tools="restic bulwark"
for ((i = 1; i <= runs; i++)); do
    for tool in $tools; do
        bucket="$tool-$i"
        curl -fs -X PUT -o /dev/null "$endpoint/$bucket"
        if [ "$tool" = restic ]; then
            measure restic-init restic init --repository-version 2 -r "$(repo_of "$bucket")"
        else
            measure bulwark-init "$bulwark" init -r "$(repo_of "$bucket")"
        fi
        measure "$tool-backup" "${bin[$tool]}" backup --no-cache -r "$(repo_of "$bucket")" "$dataset"
    done
done
# The later operations use the last run's repositories.
for ((i = 1; i <= runs; i++)); do
    for tool in $tools; do
        measure "$tool-backup2" "${bin[$tool]}" backup --no-cache -r "$(repo_of "$tool-$runs")" "$dataset"
    done
done
for tool in $tools; do
    # Fill the cache, unmeasured.
    "${bin[$tool]}" backup -r "$(repo_of "$tool-$runs")" "$dataset" >/dev/null 2>&1
done
for ((i = 1; i <= runs; i++)); do
    for tool in $tools; do
        measure "$tool-warm" "${bin[$tool]}" backup -r "$(repo_of "$tool-$runs")" "$dataset"
    done
done
for ((i = 1; i <= runs; i++)); do
    for tool in $tools; do
        sync
        measure "$tool-restore" "${bin[$tool]}" restore --no-cache -r "$(repo_of "$tool-$runs")" latest --target "$work/$tool-restore-$i"
    done
done
for tool in $tools; do
    diff -r "$dataset" "$work/$tool-restore-$runs$dataset" >/dev/null || { echo "$tool restore differs from the dataset" >&2; exit 1; }
done
rm -rf "$work"/*-restore-*
for ((i = 1; i <= runs; i++)); do
    for tool in $tools; do
        measure "$tool-check" "${bin[$tool]}" check --no-cache -r "$(repo_of "$tool-$runs")" --read-data
    done
done
# The effect of parallel uploads: one connection against the default.
curl -fs -X PUT -o /dev/null "$endpoint/bulwark-c1"
"$bulwark" init -r "$(repo_of bulwark-c1)" >/dev/null 2>&1
measure bulwark-c1 "$bulwark" backup --no-cache -o connections=1 -r "$(repo_of bulwark-c1)" "$dataset"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

files=$(find "$dataset" -type f | wc -l)
bytes=$(du -sb "$dataset" | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
moto_version=$(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null || echo unknown)

table=$(
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM, load average $load_before before and $load_after after;"
    echo "dataset \`$dataset\`: $files files, $(mib "$bytes") MiB. $(restic version | cut -d' ' -f1-2),"
    echo "bulwark $("$bulwark" --version | cut -d' ' -f2) (release build), moto $moto_version on the same cores. Best wall time of $runs runs"
    echo "per operation and tool (tools alternating), in seconds, with that run's CPU time (user + system) of the tool and of moto,"
    echo "and its number of HTTP requests; highest peak RSS of the runs, in MiB. All with \`--no-cache\` except the warm-cache row."
    echo
    echo "| operation | bulwark s | restic s | bulwark CPU s | moto CPU s | restic CPU s | moto CPU s | bulwark requests | restic requests | bulwark RSS | restic RSS |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for op in init:init backup:first\ backup backup2:no-change\ backup warm:no-change\ backup,\ warm\ cache restore:restore check:check\ --read-data; do
        k=${op%%:*}; label=${op#*:}
        echo "| $label | ${wall[bulwark-$k]} | ${wall[restic-$k]} | ${cpu[bulwark-$k]} | ${moto[bulwark-$k]} | ${cpu[restic-$k]} | ${moto[restic-$k]} | ${reqs[bulwark-$k]} | ${reqs[restic-$k]} | $(( ${rss[bulwark-$k]} / 1024 )) | $(( ${rss[restic-$k]} / 1024 )) |"
    done
    echo
    echo "Bulwark first backup with \`-o connections=1\` (one run): ${wall[bulwark-c1]} s wall, ${cpu[bulwark-c1]} s CPU, moto ${moto[bulwark-c1]} s CPU, ${reqs[bulwark-c1]} requests, $(( ${rss[bulwark-c1]} / 1024 )) MiB."
)

mkdir -p "$(dirname "$out")"
[ -f "$out" ] || printf '# Benchmarks\n' >"$out"
python3 - "$out" "$table" "$marker" <<'PY'
import sys
path, table, marker = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
if start not in text:
    text += f"\n{start}\n{end}\n"
i, j = text.index(start) + len(start), text.index(end)
open(path, "w").write(text[:i] + "\n" + table + "\n" + text[j:])
PY
echo "$table"
