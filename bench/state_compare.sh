#!/usr/bin/env bash
# bench/state_compare.sh — messages/s with [state] backend = "memory" and "redis", side by
# side in one run (issue 8).
#
# Starts Postfix's smtp-sink and a private redis-server (no persistence) on loopback,
# then for each round runs portcullis-bench against a fresh gateway with "memory" state
# and one with "redis" state, in alternation, and prints medians with the ratio
# redis/memory. Rate limits are set (very high) so that every MAIL and RCPT is a limit
# check: with "redis" each one is a Lua script in Redis, with "memory" a sharded table.
#
# Scenarios:
#   a  STARTTLS + AUTH PLAIN, 1 KiB messages, CLIENTS clients, 100 messages per connection
#      (two rate checks per message: MAIL and RCPT)
#   b  the same with 1 message per connection (adds the AUTH lockout checks per session)
#
# Usage: bench/state_compare.sh [--rounds N] [--duration S] [--warmup S] [--clients N]
#                               [--binary PORTCULLIS] [--bench PORTCULLIS-BENCH]
#                               [--port-base P] [--out DIR] [--scenarios "a b"]
# Defaults: 3 rounds, 6 s windows after 4 s warmup, 20 clients, build-r binaries.
# Needs: smtp-sink (postfix), redis-server, openssl, python3. Loopback only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=3
DURATION=6
WARMUP=4
CLIENTS=20
BIN="$ROOT/build-r/portcullis"
BENCH="$ROOT/build-r/src/bench/portcullis-bench"
PORT_BASE=28000
OUT=""
SCENARIOS="a b"

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --binary) BIN=$2; shift 2 ;;
        --bench) BENCH=$2; shift 2 ;;
        --port-base) PORT_BASE=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "state_compare.sh: unknown option $1" >&2; usage 2 ;;
    esac
done

log() { printf '[state %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
for tool in smtp-sink redis-server openssl python3; do
    command -v "$tool" >/dev/null || die "$tool not found (dev.sh installs postfix and redis-server)"
done
[ -x "$BIN" ] || die "no gateway binary at $BIN (meson setup build-r && ninja -C build-r)"
[ -x "$BENCH" ] || die "no bench binary at $BENCH"

SINK_PORT=$((PORT_BASE + 25))
REDIS_PORT=$((PORT_BASE + 79))
GW_PORT=$((PORT_BASE + 587))
OUT=${OUT:-$(mktemp -d /tmp/portcullis-state-bench-XXXXXX)}
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
    local i
    for i in $(seq 1 100); do port_open "$1" && return 0; sleep 0.1; done
    return 1
}
for p in $SINK_PORT $REDIS_PORT $GW_PORT; do
    port_open "$p" && die "port $p is taken (use --port-base)"
done

SINK_PID="" REDIS_PID="" GW_PID=""
cleanup() {
    set +e
    for pid in $GW_PID $REDIS_PID $SINK_PID; do
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
}
trap cleanup EXIT

# smtp-sink refuses to run as root; -u makes it drop to nobody after binding.
sink_user=()
[ "$(id -u)" = 0 ] && sink_user=(-u nobody)
smtp-sink -h sink.bench.test "${sink_user[@]}" "127.0.0.1:$SINK_PORT" 1024 >"$OUT/sink.log" 2>&1 &
SINK_PID=$!
wait_port "$SINK_PORT" || die "smtp-sink did not start"
mkdir -p "$OUT/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$OUT/redis" >"$OUT/redis/redis.log" 2>&1 &
REDIS_PID=$!
wait_port "$REDIS_PORT" || die "redis-server did not start"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=gw.bench.test -keyout "$OUT/tls.key" -out "$OUT/tls.crt" >/dev/null 2>&1
chmod 600 "$OUT/tls.key"
: >"$OUT/users.toml"
chmod 600 "$OUT/users.toml"

write_config() {  # STATE_BACKEND FILE
    local state=""
    if [ "$1" = redis ]; then
        state=$'[state]\nbackend = "redis"\naddress = "redis://127.0.0.1:'"$REDIS_PORT"$'"\ntimeout = "50ms"\n'
    fi
    cat >"$2" <<EOF
[server]
hostname = "gw.bench.test"
workers = 2
max_connections = 20000
max_connections_per_ip = 20000

[[listener]]
address = "127.0.0.1:$GW_PORT"
tls = "starttls"

[tls]
certificate = "$OUT/tls.crt"
private_key = "$OUT/tls.key"

[backend]
address = "127.0.0.1:$SINK_PORT"

[auth]
users_file = "$OUT/users.toml"
cache_ttl = "5m"
# The cheapest Argon2id the gateway allows: the first login of each worker is not what
# is measured here (the cache answers the rest).
hash_memory = "19MiB"
hash_iterations = 2

[rate_limits]
messages = "1000000000/1h"
recipients = "1000000000/1h"

[log]
format = "json"
level = "warn"

$state
EOF
}

write_config memory "$OUT/memory.toml"
write_config redis "$OUT/redis.toml"
PASSWORD="Bench-$(openssl rand -hex 12)-Xq9"
printf '%s\n' "$PASSWORD" | "$BIN" user add bench@bench.test --password-stdin \
    --config "$OUT/memory.toml" >"$OUT/user-add.log" 2>&1 || die "user add: $(cat "$OUT/user-add.log")"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() {  # ROUND SCENARIO STATE
    local round=$1 scenario=$2 state=$3 per_conn=100
    [ "$scenario" = b ] && per_conn=1
    "$BIN" serve --config "$OUT/$state.toml" >>"$OUT/gateway-$state.log" 2>&1 &
    GW_PID=$!
    wait_port "$GW_PORT" || die "gateway ($state) did not start: $(tail -3 "$OUT/gateway-$state.log")"
    local r0 r1 json rc=0
    r0=$(cpu_ticks "$REDIS_PID")
    json=$(PORTCULLIS_BENCH_PASSWORD="$PASSWORD" "$BENCH" --json --target "127.0.0.1:$GW_PORT" \
        --mode starttls --auth plain --user bench@bench.test --clients "$CLIENTS" \
        --messages-per-connection "$per_conn" --size 1KiB --duration "$DURATION" \
        --warmup "$WARMUP" --watch-pid "$GW_PID") || rc=$?
    r1=$(cpu_ticks "$REDIS_PID")
    kill -TERM "$GW_PID"
    wait "$GW_PID" 2>/dev/null || true
    GW_PID=""
    [ -n "$json" ] || die "bench printed nothing (rc $rc)"
    printf '%s\n' "$json" | python3 -c '
import json, os, sys
r = json.loads(sys.stdin.read())
r.update(round=int(sys.argv[1]), scenario=sys.argv[2], state=sys.argv[3], rc=int(sys.argv[4]),
         redis_cpu_s=(int(sys.argv[6]) - int(sys.argv[5])) / os.sysconf("SC_CLK_TCK"))
print(json.dumps(r))' "$round" "$scenario" "$state" "$rc" "$r0" "$r1" >>"$RESULTS"
    log "round $round scenario $scenario $state: $(tail -1 "$RESULTS" | python3 -c '
import json, sys; r = json.loads(sys.stdin.read())
print("%.0f msg/s, %.0f sessions/s, p99 %.2f ms, failures %s" % (r["messages_per_s"], r["sessions_per_s"], r["latency_ms"]["p99"], r.get("failures")))')"
}

log "results in $OUT"
for round in $(seq 1 "$ROUNDS"); do
    for scenario in $SCENARIOS; do
        # alternate which goes first so drift on a shared machine hits both alike
        if [ $((round % 2)) = 1 ]; then order="memory redis"; else order="redis memory"; fi
        for state in $order; do
            run "$round" "$scenario" "$state"
        done
    done
done

python3 - "$RESULTS" "$CLIENTS" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(scenario, state, key):
    vals = [key(r) for r in rows if r["scenario"] == scenario and r["state"] == state]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else float("nan")
metrics = [
    ("messages/s", lambda r: r["messages_per_s"]),
    ("sessions/s", lambda r: r["sessions_per_s"]),
    ("latency p50 ms", lambda r: r["latency_ms"]["p50"]),
    ("latency p99 ms", lambda r: r["latency_ms"]["p99"]),
    ("gateway CPU us/message", lambda r: r.get("server_cpu_us_per_message")),
    ("redis CPU us/message", lambda r: r["redis_cpu_s"] * 1e6 / max(1, r["messages"])),
]
names = {"a": "STARTTLS+AUTH, 1 KiB, %s clients, 100 msg/conn" % sys.argv[2],
         "b": "STARTTLS+AUTH, 1 KiB, %s clients, 1 msg/conn" % sys.argv[2]}
print("| scenario | metric | memory | redis | redis/memory |")
print("|---|---|---|---|---|")
for scenario in sorted({r["scenario"] for r in rows}):
    for i, (name, key) in enumerate(metrics):
        m, r = med(scenario, "memory", key), med(scenario, "redis", key)
        ratio = "%.2fx" % (r / m) if m and m == m and m != 0 else "-"
        print("| %s | %s | %.1f | %.1f | %s |" % (names[scenario] if i == 0 else "", name, m, r, ratio))
print()
print("medians of %d rounds; failures: %s" % (max(r["round"] for r in rows),
      sum(r.get("failures") or 0 for r in rows)))
EOF
# A deadline missed under load makes that call fall back to local state (logged once
# per outage): say how often it happened, so the numbers can be judged.
echo "Redis deadline misses logged (state.unavailable) during the redis runs:" \
    "$(grep -c '"state.unavailable"' "$OUT/gateway-redis.log" || true)"
