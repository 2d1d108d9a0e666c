#!/usr/bin/env bash
# A/B of PostgreSQL request-approval (issue 13 §5, bench/NOTES.md "pgwrite"): two release
# guestlist-server binaries on one throwaway PostgreSQL cluster set up as scripts/bench.sh
# section 8 (fsync=on, synchronous_commit=on, max_connections=300) plus pg_stat_statements,
# each on its own database, wrk request-approval against A then B (the order swapped every
# round), and per run: stored sign-ups/s, p50/p99, WAL bytes and WAL syncs per stored sign-up,
# CPU µs per stored sign-up of the server and of every PostgreSQL process, the machine's idle
# share; then per-round B ÷ A ratios.
#
# AB_CALL=check measures check-status instead (issue 13 §5 "check-status p99, 64 connections"):
# each database gets 10,000 requests through the API (bench-signup: $BENCH_SIGNUP, default
# target/release/bench-signup), then wrk check-status.lua; per run: calls/s, p50/p99, errors,
# CPU µs per call of the server and of PostgreSQL, and the machine's idle share.
#
#   bench/pg-write-ab.sh BIN_A BIN_B [rounds=3] [secs=5]
#
# Env: CONNS (64), THREADS (2), AB_ENV_A / AB_ENV_B (extra `VAR=value …` for one server, e.g.
# AB_ENV_B="GUESTLIST_POSTGRES__POOL_SIZE=16"), AB_STATEMENTS=1 (print pg_stat_statements'
# top statements per variant at the end), AB_KEEP=1 (leave the cluster's log in $AB_WORK).
# Needs wrk and PostgreSQL (scripts/setup.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
A=${1:?usage: bench/pg-write-ab.sh BIN_A BIN_B [rounds] [secs]}
B=${2:?usage: bench/pg-write-ab.sh BIN_A BIN_B [rounds] [secs]}
ROUNDS=${3:-3}
SECS=${4:-5}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
AB_WORK=${AB_WORK:-/var/tmp/guestlist-pg-write-ab}
AB_CALL=${AB_CALL:-request}
BENCH_SIGNUP=${BENCH_SIGNUP:-$ROOT/target/release/bench-signup}
export BENCH_WRK_DIR=$ROOT/bench/wrk

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "pg-write-ab: PostgreSQL is missing: run scripts/setup.sh" >&2; exit 1; }
rm -rf "$AB_WORK"
mkdir -p "$AB_WORK"
PGROOT=$(mktemp -d /var/tmp/guestlist-ab-pg.XXXXXX)
mkdir -p "$PGROOT/sock"
AS_PG=()
if [ "$(id -u)" = 0 ]; then chown -R postgres: "$PGROOT"; AS_PG=(runuser -u postgres --); fi
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGROOT/data" -m immediate -w stop >/dev/null 2>&1 || true
  [ "${AB_KEEP:-0}" = 1 ] && cp "$PGROOT/postgres.log" "$AB_WORK/" 2>/dev/null
  rm -rf "$PGROOT"
}
trap cleanup EXIT
free_port() { python3 "$ROOT/scripts/free-port.py"; }
"${AS_PG[@]}" "$PGBIN/initdb" -D "$PGROOT/data" -U postgres --auth=trust -E UTF8 --locale=C >"$AB_WORK/initdb.log" 2>&1
P_PG=$(free_port)
"${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/postgres.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $P_PG -k $PGROOT/sock -c fsync=on -c synchronous_commit=on -c max_connections=300 -c shared_preload_libraries=pg_stat_statements" \
  start >/dev/null
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$PGROOT/sock" -p "$P_PG" -U postgres -d "${2:-postgres}" -c "$1"; }
PM=$(head -1 "$PGROOT/data/postmaster.pid")
for d in ab_a ab_b; do sql "CREATE DATABASE $d"; sql "CREATE EXTENSION pg_stat_statements" "$d"; done

# utime+stime (clock ticks) of a process and its threads; of the postmaster, that of its live
# children plus the reaped ones (cutime+cstime), so a backend that exits keeps its share.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
  local t p
  t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$PM/stat")
  for p in $(ps -o pid= --ppid "$PM"); do t=$((t + $(ticks "$p"))); done
  echo "$t"
}
idle_total() { awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }

declare -A PORT SPID
start() { # variant binary extra-env
  local v=$1 bin=$2 extra=$3 port
  port=$(free_port)
  # shellcheck disable=SC2086
  env GUESTLIST_CONNECTOR_USERNAME=entra GUESTLIST_CONNECTOR_PASSWORD=bench-connector-secret \
    GUESTLIST_RETENTION__TOMBSTONE_KEY=bench-tombstone-key-0123456789abcdef $extra \
    "$bin" --listen "127.0.0.1:$port" --database "postgres://postgres@127.0.0.1:$P_PG/ab_$v" \
    >"$AB_WORK/server-$v.log" 2>&1 &
  SPID[$v]=$!
  PIDS+=($!)
  PORT[$v]=$port
  for _ in $(seq 1 400); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && return 0; sleep 0.05; done
  echo "pg-write-ab: server $v did not come up (log: $AB_WORK/server-$v.log)" >&2
  exit 1
}
start a "$A" "${AB_ENV_A:-}"
start b "$B" "${AB_ENV_B:-}"
if [ "$AB_CALL" = check ]; then
  for v in a b; do
    "$BENCH_SIGNUP" "http://127.0.0.1:${PORT[$v]}" 10000 >/dev/null
    BENCH_ROWS=10000 wrk -t"$THREADS" -c"$CONNS" -d2s -s "$BENCH_WRK_DIR/check-status.lua" "http://127.0.0.1:${PORT[$v]}" >/dev/null 2>&1
  done
fi
for v in a b; do
  [ "$AB_CALL" = check ] && continue
  BENCH_NONCE="warm-$v" wrk -t"$THREADS" -c"$CONNS" -d2s -s "$BENCH_WRK_DIR/request-approval.lua" "http://127.0.0.1:${PORT[$v]}" >/dev/null 2>&1
  sql "SELECT pg_stat_statements_reset()" "ab_$v" >/dev/null
done

declare -A RPS
run() { # variant round
  local v=$1 r=$2 db="ab_$1"
  if [ "$AB_CALL" = check ]; then run_check "$v" "$r"; return; fi
  local rows0 lsn0 syncs0 st0 pg0 it0 out line rows1 lsn1 syncs1 st1 pg1 it1
  rows0=$(sql "SELECT count(*) FROM requests" "$db")
  lsn0=$(sql "SELECT pg_current_wal_insert_lsn()")
  syncs0=$(sql "SELECT wal_sync FROM pg_stat_wal")
  st0=$(ticks "${SPID[$v]}"); pg0=$(pg_ticks); it0=$(idle_total)
  out=$(BENCH_NONCE="ab-$v-$r-$RANDOM" wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency \
    -s "$BENCH_WRK_DIR/request-approval.lua" "http://127.0.0.1:${PORT[$v]}" 2>&1)
  st1=$(ticks "${SPID[$v]}"); pg1=$(pg_ticks); it1=$(idle_total)
  rows1=$(sql "SELECT count(*) FROM requests" "$db")
  lsn1=$(sql "SELECT pg_current_wal_insert_lsn()")
  syncs1=$(sql "SELECT wal_sync FROM pg_stat_wal")
  line=$(grep '^WRK_RESULT' <<<"$out" | sed 's/^WRK_RESULT //')
  [ -n "$line" ] || { echo "$out" >&2; exit 1; }
  local wal stored
  stored=$((rows1 - rows0))
  wal=$(sql "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')")
  python3 - "$v" "$r" "$line" "$stored" "$wal" "$((syncs1 - syncs0))" "$((st1 - st0))" "$((pg1 - pg0))" "$it0" "$it1" "$SECS" "$(getconf CLK_TCK)" <<'PY'
import sys
v, r, line, stored, wal, syncs, st, pg, it0, it1, secs, hz = sys.argv[1:]
kv = dict(x.split("=") for x in line.split())
stored, syncs = int(stored), int(syncs)
i0, t0 = map(int, it0.split()); i1, t1 = map(int, it1.split())
n = max(stored, 1)
print(f"{v} round {r}: stored/s={stored/float(secs):.0f} answered/s={float(kv['rps']):.0f} "
      f"p50={int(kv['p50'])/1000:.1f}ms p99={int(kv['p99'])/1000:.1f}ms errors={kv['errors']} "
      f"WAL/signup={int(float(wal))/n:.0f}B signups/walsync={stored/max(syncs,1):.1f} "
      f"server_cpu/signup={int(st)/int(hz)/n*1e6:.0f}us pg_cpu/signup={int(pg)/int(hz)/n*1e6:.0f}us "
      f"idle={(i1-i0)/max(t1-t0,1)*100:.0f}%")
PY
  RPS[$v,$r]=$(awk -v s="$stored" -v d="$SECS" 'BEGIN { print s / d }')
}
run_check() { # variant round
  local v=$1 r=$2 st0 pg0 it0 out line st1 pg1 it1
  st0=$(ticks "${SPID[$v]}"); pg0=$(pg_ticks); it0=$(idle_total)
  out=$(BENCH_ROWS=10000 wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency \
    -s "$BENCH_WRK_DIR/check-status.lua" "http://127.0.0.1:${PORT[$v]}" 2>&1)
  st1=$(ticks "${SPID[$v]}"); pg1=$(pg_ticks); it1=$(idle_total)
  line=$(grep '^WRK_RESULT' <<<"$out" | sed 's/^WRK_RESULT //')
  [ -n "$line" ] || { echo "$out" >&2; exit 1; }
  python3 - "$v" "$r" "$line" "$((st1 - st0))" "$((pg1 - pg0))" "$it0" "$it1" "$SECS" "$(getconf CLK_TCK)" <<'PY'
import sys
v, r, line, st, pg, it0, it1, secs, hz = sys.argv[1:]
kv = dict(x.split("=") for x in line.split())
i0, t0 = map(int, it0.split()); i1, t1 = map(int, it1.split())
n = max(float(kv['rps']) * float(secs), 1)
print(f"{v} round {r}: calls/s={float(kv['rps']):.0f} "
      f"p50={int(kv['p50'])/1000:.2f}ms p99={int(kv['p99'])/1000:.2f}ms errors={kv['errors']} "
      f"server_cpu/call={int(st)/int(hz)/n*1e6:.1f}us pg_cpu/call={int(pg)/int(hz)/n*1e6:.1f}us "
      f"idle={(i1-i0)/max(t1-t0,1)*100:.0f}%")
PY
  RPS[$v,$r]=$(awk -v l="$line" 'BEGIN { split(l, f, " "); for (i in f) if (f[i] ~ /^rps=/) { split(f[i], kv, "="); print kv[2] } }')
}
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then run a "$r"; run b "$r"; else run b "$r"; run a "$r"; fi
done
echo "$([ "$AB_CALL" = check ] && echo calls/s || echo stored/s) B ÷ A per round:"
for r in $(seq 1 "$ROUNDS"); do
  awk -v a="${RPS[a,$r]}" -v b="${RPS[b,$r]}" -v r="$r" 'BEGIN { printf "  round %d: %.0f / %.0f = %.2f×\n", r, b, a, b / a }'
done
if [ "${AB_STATEMENTS:-0}" = 1 ]; then
  for v in a b; do
    echo "pg_stat_statements, $v (calls, mean ms, total ms, WAL bytes per call):"
    sql "SELECT calls, round(mean_exec_time::numeric, 3), round(total_exec_time::numeric, 0), wal_bytes / greatest(calls, 1), left(regexp_replace(query, '\s+', ' ', 'g'), 90) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'ab_$v') ORDER BY total_exec_time DESC LIMIT 12" "ab_$v"
  done
fi
