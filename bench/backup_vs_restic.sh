#!/usr/bin/env bash
# Bulwark against restic, same dataset, same machine, one run.
#
#   bench/backup_vs_restic.sh [DATASET_DIR] [OUTPUT_MD]
#
# Runs, for each tool: first backup, no-change backup, full restore and
# `check --read-data`, measuring wall time and peak RSS with /usr/bin/time,
# then the repository size. Writes a markdown table to OUTPUT_MD (default
# docs/benchmarks.md, replacing the section between the markers). Not part of
# CI: it takes minutes and its numbers depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

dataset=$(realpath "${1:-$HOME/.cargo/registry/src}")
out=${2:-docs/benchmarks.md}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bulwark-target}"

command -v restic >/dev/null || { echo "restic is not installed (scripts/test.sh installs it)" >&2; exit 2; }
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null

cargo build --release -p bulwark >&2
bulwark="$CARGO_TARGET_DIR/release/bulwark"

work=$(mktemp -d /tmp/bulwark-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export RESTIC_PASSWORD=bench-password BULWARK_PASSWORD=bench-password
export RESTIC_CACHE_DIR="$work/restic-cache"

# Warm the page cache so neither tool pays for the first read of the dataset.
tar -cf - -C "$dataset" . >/dev/null

declare -A wall rss size
measure() { # key command...
    local key=$1; shift
    if ! /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/$key.out" 2>"$work/$key.err"; then
        echo "$key failed:" >&2; tail -n 20 "$work/$key.err" >&2; exit 1
    fi
    read -r wall[$key] rss[$key] <"$work/time"
    echo "$key: ${wall[$key]} s, $(( ${rss[$key]} / 1024 )) MiB" >&2
}

for tool in restic bulwark; do
    bin=$([ "$tool" = restic ] && echo restic || echo "$bulwark")
    repo="$work/$tool-repo"
    if [ "$tool" = restic ]; then
        restic init --repository-version 2 -r "$repo" >/dev/null
    else
        "$bin" init -r "$repo" >/dev/null
    fi
    measure "$tool-backup" "$bin" backup -r "$repo" "$dataset"
    measure "$tool-backup2" "$bin" backup -r "$repo" "$dataset"
    measure "$tool-restore" "$bin" restore -r "$repo" latest --target "$work/$tool-restore"
    measure "$tool-check" "$bin" check -r "$repo" --read-data
    size[$tool]=$(du -sb "$repo" | cut -f1)
    # Both restores must reproduce the dataset.
    diff -r "$dataset" "$work/$tool-restore$dataset" >/dev/null || { echo "$tool restore differs from the dataset" >&2; exit 1; }
    rm -rf "$work/$tool-restore"
done

files=$(find "$dataset" -type f | wc -l)
bytes=$(du -sb "$dataset" | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'; }

table=$(
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM;"
    echo "dataset \`$dataset\`: $files files, $(mib "$bytes") MiB. $(restic version | cut -d' ' -f1-2),"
    echo "bulwark $("$bulwark" --version | cut -d' ' -f2) (release build). Wall time in seconds, peak RSS in MiB."
    echo
    echo "| operation | bulwark s | restic s | bulwark speed-up | bulwark RSS | restic RSS |"
    echo "|---|---:|---:|---:|---:|---:|"
    for op in backup:first\ backup backup2:no-change\ backup restore:restore check:check\ --read-data; do
        k=${op%%:*}; label=${op#*:}
        echo "| $label | ${wall[bulwark-$k]} | ${wall[restic-$k]} | $(ratio "${wall[restic-$k]}" "${wall[bulwark-$k]}") | $(( ${rss[bulwark-$k]} / 1024 )) | $(( ${rss[restic-$k]} / 1024 )) |"
    done
    echo
    echo "Repository size: bulwark $(mib "${size[bulwark]}") MiB, restic $(mib "${size[restic]}") MiB ($(ratio "${size[bulwark]}" "${size[restic]}") of restic's)."
)

mkdir -p "$(dirname "$out")"
[ -f "$out" ] || printf '# Benchmarks\n\n<!-- backup-vs-restic:start -->\n<!-- backup-vs-restic:end -->\n' >"$out"
python3 - "$out" "$table" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2]
text = open(path).read()
start, end = "<!-- backup-vs-restic:start -->", "<!-- backup-vs-restic:end -->"
i, j = text.index(start) + len(start), text.index(end)
open(path, "w").write(text[:i] + "\n" + table + "\n" + text[j:])
PY
echo "$table"
