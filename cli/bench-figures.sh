#!/usr/bin/env bash
# Reproduces the figures of the README's Performance section (cli/README-performance.md).
#
#   cli/bench-figures.sh [OUT_DIR]      (default: target/bench-figures)
#   LESSOR_BIN=path/to/lessor cli/bench-figures.sh [OUT_DIR]
#
# Writes one JSON line per run into OUT_DIR/*.jsonl, the SVGs, and OUT_DIR/load.txt (the load
# average before each step: the machine is shared, so say what it was). About 16 minutes on
# 2 cores; the 1e7-lease runs hold a few GiB, the log runs write a few hundred MiB to /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench-figures}
mkdir -p "$out"
# LESSOR_BIN: a lessor binary to use instead of building one.
bin=${LESSOR_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release -p lessor-cli
  bin=target/release/lessor
fi
load() { echo "$(date -u +%FT%TZ) $1: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/load.txt"; }

# Scaling: per-op cost from 1e3 to 1e7 leases, one thread, as a ratio to the floor. Three sweeps
# each (the README shows the median).
for rep in 1 2 3; do
  for s in renew grant; do
    load "sweep $s #$rep"
    $bin bench "$s" --threads 1 --sizes 1e3,1e4,1e5,1e6,1e7 --duration 2 --json \
      --plot "$out/$s-sweep-$rep.svg" >"$out/$s-sweep-$rep.jsonl"
  done
done

# Every scenario at 1e6 leases, 2 threads (the machine's cores).
for s in grant renew revoke attach promote; do
  load "$s 1e6"
  $bin bench "$s" --leases 1e6 --threads 2 --duration 4 --json >"$out/$s-1e6.jsonl"
done
load "revoke 1e6 K=4"
$bin bench revoke --leases 1e6 --threads 2 --duration 4 --keys-per-lease 4 --json >"$out/revoke-1e6-k4.jsonl"
load "renew 1e6 lazy heap"
$bin bench renew --leases 1e6 --threads 2 --duration 4 --baseline-heap lazy --json >"$out/renew-1e6-lazy.jsonl"
load "mixed 1e6"
$bin bench mixed --leases 1e6 --threads 2 --duration 10 --keys-per-lease 1 --json >"$out/mixed-1e6.jsonl"
load "expiry 1e6 at once"
$bin bench expiry --leases 1e6 --threads 2 --duration 10 --json \
  --plot "$out/expiry-at-once.svg" >"$out/expiry-1e6-at-once.jsonl" || true
load "expiry 1e6 spread"
$bin bench expiry --leases 1e6 --threads 2 --duration 10 --ttl uniform:1s..10s --json \
  --plot "$out/expiry-spread.svg" >"$out/expiry-1e6-spread.jsonl" || true

# The write-ahead log: rebuilding 1e6 leases (one key each) from segments and from a snapshot,
# and grants under each fsync policy at 1 and 2 threads. (gRPC against a real etcd:
# scripts/bench-vs-etcd, which needs etcd installed.)
load "recovery 1e6 K=1"
$bin bench recovery --leases 1e6 --keys-per-lease 1 --duration 4 --json >"$out/recovery-1e6-k1.jsonl"
load "durable-grant 1e5"
$bin bench durable-grant --leases 1e5 --threads 1,2 --duration 4 --json >"$out/durable-grant-1e5.jsonl"
load "done"
