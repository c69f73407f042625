#!/usr/bin/env bash
# Prints the path of the Linux 6.1 source tree the benchmarks use with
# `--linux`: Debian's `linux-source-6.1` (about 78,600 files, 1.3 GB; the
# size where per-file and per-blob state shows in peak RSS), downloaded
# with apt-get and extracted into BENCH_LINUX_DIR (default
# ~/.cache/bulwark-bench/linux-source-6.1) when missing.
set -euo pipefail
linux=${BENCH_LINUX_DIR:-$HOME/.cache/bulwark-bench/linux-source-6.1}
if [ ! -d "$linux" ]; then
    # The .deb holds the source as one tarball; both go once extracted.
    mkdir -p "$(dirname "$linux")"
    dl=$(mktemp -d "$(dirname "$linux")/.linux-dl.XXXXXX")
    (cd "$dl" && apt-get download linux-source-6.1 >&2)
    dpkg-deb -x "$dl"/linux-source-6.1_*.deb "$dl/deb"
    tar -xJf "$dl"/deb/usr/src/linux-source-6.1.tar.xz -C "$dl"
    mv "$dl/linux-source-6.1" "$linux"
    rm -rf "$dl"
fi
echo "$linux"
