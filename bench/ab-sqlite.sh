#!/usr/bin/env bash
# bench/ab-sqlite.sh: a narrow A/B of the SQLite connector figures of `make bench` sections 1–2
# (store scale and request-approval), for comparing two builds of guestlist-server in one session.
# Not part of `make bench` or `make test`; prints raw lines, writes nothing under bench/.
#
# Usage: bench/ab-sqlite.sh DIR_A DIR_B [ROUNDS]
#   DIR_A, DIR_B: directories holding a release `guestlist-server` each (e.g. copies of
#   target/release/guestlist-server of two commits); bench-open, bench-populate and wrk come from
#   $CARGO_TARGET_DIR/release (or BENCH_TOOLS_DIR).
# Each round runs A then B, then B then A in the next round (alternated), each variant on its own
# server process and its own copy of the databases; per figure one line
#   <variant> <round> <scenario> <raw result line>
# Knobs (env): AB_RATE (open-loop offered calls/s, 2000), AB_OPEN_CONNS (8), AB_SECS (5),
# AB_REQUEST_SECS (5), AB_REQUEST_CONNS (64), AB_ROWS ("10 10000 1000000"), AB_SKIP_REQUEST=1,
# AB_SKIP_SCALE=1, AB_OPEN_THREADS (bench-open's --threads when set), AB_WRK=1 (also the
# saturated wrk -t2 -c8 store-scale run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
A=$1 B=$2 ROUNDS=${3:-3}
TOOLS=${BENCH_TOOLS_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
RATE=${AB_RATE:-2000}
OPEN_CONNS=${AB_OPEN_CONNS:-8}
SECS=${AB_SECS:-5}
REQ_SECS=${AB_REQUEST_SECS:-5}
REQ_CONNS=${AB_REQUEST_CONNS:-64}
ROWS=${AB_ROWS:-10 10000 1000000}
WORK=${AB_WORK:-${CARGO_TARGET_DIR:-$ROOT/target}/ab-sqlite-work}
export BENCH_WRK_DIR=$ROOT/bench/wrk
mkdir -p "$WORK"
PID=""
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi; }
trap stop EXIT

start() { # bin_dir db port
  GUESTLIST_CONNECTOR_USERNAME=entra GUESTLIST_CONNECTOR_PASSWORD=bench-connector-secret \
    GUESTLIST_ADMIN_LISTEN=off "$1/guestlist-server" --listen "127.0.0.1:$3" --database "$2" \
    >>"$WORK/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$3/healthz" && return 0; sleep 0.05; done
  echo "server did not come up" >&2; return 1
}

for n in $ROWS; do
  [ -f "$WORK/rows$n.db" ] || "$TOOLS/bench-populate" "$WORK/rows$n.db" "$n" >/dev/null
done
rm -f "$WORK"/request-*.db*

open_args=()
[ -n "${AB_OPEN_THREADS:-}" ] && open_args=(--threads "$AB_OPEN_THREADS")
echo "# $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg); A=$A B=$B rate=$RATE c=$OPEN_CONNS"
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
  for v in $order; do
    if [ "$v" = A ]; then dir=$A; else dir=$B; fi
    port=$(python3 "$ROOT/scripts/free-port.py")
    if [ "${AB_SKIP_SCALE:-0}" != 1 ]; then
      for n in $ROWS; do
        start "$dir" "$WORK/rows$n.db" "$port"
        # Warm-up (not recorded): the first calls of a process.
        "$TOOLS/bench-open" "${open_args[@]}" "http://127.0.0.1:$port" 1000 "$OPEN_CONNS" 1 "$n" >/dev/null
        line=$("$TOOLS/bench-open" "${open_args[@]}" "http://127.0.0.1:$port" "$RATE" "$OPEN_CONNS" "$SECS" "$n" | sed -n 's/^OPEN_RESULT //p')
        echo "$v $round open$n $line"
        if [ "${AB_WRK:-0}" = 1 ]; then
          line=$(BENCH_ROWS=$n wrk -t2 -c8 -d3s --latency -s "$BENCH_WRK_DIR/check-status.lua" "http://127.0.0.1:$port" | sed -n 's/^WRK_RESULT //p')
          echo "$v $round wrk$n $line"
        fi
        stop
      done
    fi
    if [ "${AB_SKIP_REQUEST:-0}" != 1 ]; then
      start "$dir" "$WORK/request-$v.db" "$port"
      line=$(BENCH_NONCE="ab$round$v$RANDOM" wrk -t2 -c"$REQ_CONNS" -d"${REQ_SECS}s" --latency -s "$BENCH_WRK_DIR/request-approval.lua" "http://127.0.0.1:$port" | sed -n 's/^WRK_RESULT //p')
      echo "$v $round request $line"
      stop
    fi
  done
done
echo "# $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
