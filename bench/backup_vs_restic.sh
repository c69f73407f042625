#!/usr/bin/env bash
# Bulwark against restic, same dataset, same machine.
#
#   bench/backup_vs_restic.sh [DATASET_DIR] [OUTPUT_MD]
#   bench/backup_vs_restic.sh --linux [OUTPUT_MD]
#
# `--linux` uses the Linux 6.1 source tree (bench/linux_tree.sh fetches
# it once) and writes its own section of OUTPUT_MD. Scratch space
# (repositories, restore targets: about 3 GB per run for this tree) goes
# under BENCH_TMP (default /tmp); BENCH_TMP=/dev/shm measures on tmpfs.
#
# Runs, for each tool: first backup, no-change backup, full restore and
# `check --read-data`, each BENCH_RUNS times (default 3), measuring wall
# time, CPU time (user + system) and peak RSS with /usr/bin/time. The table
# shows the best (lowest) wall time of the runs with that run's CPU time,
# and the highest peak RSS of all runs; the two tools alternate run by run,
# so that a burst of load on a shared machine hits both. Then the
# repository size. Writes a markdown table to OUTPUT_MD (default
# docs/benchmarks.md, replacing the section between the markers). Not part
# of CI: it takes minutes and its numbers depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

marker=backup-vs-restic
if [ "${1:-}" = --linux ]; then
    shift
    linux=$(bench/linux_tree.sh)
    set -- "$linux" "$@"
    marker=backup-vs-restic-linux
fi
dataset=$(realpath "${1:-$HOME/.cargo/registry/src}")
out=${2:-docs/benchmarks.md}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bulwark-target}"

command -v restic >/dev/null || { echo "restic is not installed (scripts/test.sh installs it)" >&2; exit 2; }
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null

cargo build --release -p bulwark >&2
bulwark="$CARGO_TARGET_DIR/release/bulwark"

work=$(mktemp -d "${BENCH_TMP:-/tmp}/bulwark-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export RESTIC_PASSWORD=bench-password BULWARK_PASSWORD=bench-password
export RESTIC_CACHE_DIR="$work/restic-cache"

# Warm the page cache so neither tool pays for the first read of the dataset.
tar -cf - -C "$dataset" . >/dev/null

runs=${BENCH_RUNS:-3}
declare -A wall cpu rss size bin repo
bin[restic]=restic
bin[bulwark]=$bulwark
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# One run of `command` as `key`; keeps the best wall time (with its CPU
# time) and the highest RSS over the runs.
measure() { # key command...
    local key=$1; shift
    if ! /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" >"$work/$key.out" 2>"$work/$key.err"; then
        echo "$key failed:" >&2; tail -n 20 "$work/$key.err" >&2; exit 1
    fi
    local w u s r
    read -r w u s r <"$work/time"
    echo "$key: $w s wall, $u+$s s CPU, $(( r / 1024 )) MiB" >&2
    if [ -z "${wall[$key]:-}" ] || awk -v a="$w" -v b="${wall[$key]}" 'BEGIN { exit !(a < b) }'; then
        wall[$key]=$w
        cpu[$key]=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
    fi
    if [ -z "${rss[$key]:-}" ] || [ "$r" -gt "${rss[$key]}" ]; then rss[$key]=$r; fi
}

init() { # tool
    local tool=$1
    rm -rf "${repo[$tool]}"
    if [ "$tool" = restic ]; then
        restic init --repository-version 2 -r "${repo[$tool]}" >/dev/null
    else
        "${bin[$tool]}" init -r "${repo[$tool]}" >/dev/null
    fi
}

tools="restic bulwark"
for tool in $tools; do repo[$tool]="$work/$tool-repo"; done
# First backups: a fresh repository each run.
for ((i = 1; i <= runs; i++)); do
    for tool in $tools; do
        init "$tool"
        measure "$tool-backup" "${bin[$tool]}" backup -r "${repo[$tool]}" "$dataset"
    done
done
for ((i = 1; i <= runs; i++)); do
    for tool in $tools; do
        measure "$tool-backup2" "${bin[$tool]}" backup -r "${repo[$tool]}" "$dataset"
    done
done
for ((i = 1; i <= runs; i++)); do
    for tool in $tools; do
        # A fresh target each run, nothing deleted in between, and what
        # the previous run left dirty written back first: on a filesystem
        # mounted with `discard` (as here) writing right after deleting a
        # tree of the same size waits for the discards, and the runs would
        # measure each other.
        sync
        measure "$tool-restore" "${bin[$tool]}" restore -r "${repo[$tool]}" latest --target "$work/$tool-restore-$i"
    done
done
for tool in $tools; do
    # Both restores must reproduce the dataset.
    diff -r "$dataset" "$work/$tool-restore-$runs$dataset" >/dev/null || { echo "$tool restore differs from the dataset" >&2; exit 1; }
done
rm -rf "$work"/*-restore-*
for ((i = 1; i <= runs; i++)); do
    for tool in $tools; do
        measure "$tool-check" "${bin[$tool]}" check -r "${repo[$tool]}" --read-data
    done
done
for tool in $tools; do size[$tool]=$(du -sb "${repo[$tool]}" | cut -f1); done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

files=$(find "$dataset" -type f | wc -l)
bytes=$(du -sb "$dataset" | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'; }

table=$(
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM, load average $load_before before and $load_after after;"
    echo "dataset \`$dataset\`: $files files, $(mib "$bytes") MiB. $(restic version | cut -d' ' -f1-2),"
    echo "bulwark $("$bulwark" --version | cut -d' ' -f2) (release build). Best wall time of $runs runs per operation and tool"
    echo "(tools alternating), in seconds, with that run's CPU time (user + system); highest peak RSS of the runs, in MiB."
    echo
    echo "| operation | bulwark s | restic s | bulwark speed-up | bulwark CPU s | restic CPU s | bulwark RSS | restic RSS |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for op in backup:first\ backup backup2:no-change\ backup restore:restore check:check\ --read-data; do
        k=${op%%:*}; label=${op#*:}
        echo "| $label | ${wall[bulwark-$k]} | ${wall[restic-$k]} | $(ratio "${wall[restic-$k]}" "${wall[bulwark-$k]}") | ${cpu[bulwark-$k]} | ${cpu[restic-$k]} | $(( ${rss[bulwark-$k]} / 1024 )) | $(( ${rss[restic-$k]} / 1024 )) |"
    done
    echo
    echo "Repository size: bulwark $(mib "${size[bulwark]}") MiB, restic $(mib "${size[restic]}") MiB ($(ratio "${size[bulwark]}" "${size[restic]}") of restic's)."
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
