#!/usr/bin/env bash
# bench/compare.sh — Portcullis beside nginx's mail proxy, on this machine, in one run.
#
# Installs what it needs (Debian: nginx + libnginx-mod-mail, postfix for smtp-sink),
# starts Postfix's smtp-sink on loopback as the backend, then for each round and each
# scenario starts a fresh nginx (mail module, private prefix) and a fresh Portcullis with
# equivalent settings, runs build/portcullis-bench against each in alternation, and prints
# a table of medians with the ratio portcullis/nginx. Server CPU time (utime+stime of all
# the server's processes, /proc/PID/stat) and RSS (/proc/PID/status VmRSS) are read by
# portcullis-bench at the exact start and end of each measured window (--watch-pid).
#
# Scenarios (issue 7):
#   a  STARTTLS + AUTH PLAIN, 1 KiB messages, 50 clients, 100 messages per connection
#   b  the same with 1 message per connection
#   c  implicit TLS, 1 MiB messages, 8 clients, 100 messages per connection
#   d  N idle TLS connections (implicit TLS, handshake done, greeting read): RSS delta / N
#   e  scenario a at a fixed rate of half the lower of the two peaks measured in a in the
#      same round; p99 latency, also measured directly against the sink (plain) for the
#      latency the proxy adds, both as the bench read the replies and at its socket
#      (kernel receive timestamps, without the bench's own delays)
#   f  e with the proxy on a core of its own: the proxy (one worker) pinned to CPU 1, the
#      bench and the sink to CPU 0 (taskset). Its peak is measured first (unpaced, as a),
#      then both proxies and the sink directly are paced at half the lower peak. This is
#      the latency the proxy adds when it does not queue behind the load generator for
#      a core; e shows the same with everything sharing both cores.
#   g  f's paced runs again with the bench resuming TLS sessions (--resume: each client
#      offers its last session ticket when it reconnects, as mail clients do); latency
#      over f's sink baseline (scenario f must run in the same round)
#   i  e's paced runs again with the reconnects spread over time (--stagger; see h);
#      latency over e's sink baseline
#   h  f's paced runs again with full handshakes but reconnects spread over time
#      (portcullis-bench --stagger): paced clients otherwise take turns, reach their
#      100th message together and reconnect in a burst of 50 full handshakes every
#      100 x 50 messages, which saturates both cores (the bench's own client handshakes
#      on CPU 0 cost about as much as the proxy's on CPU 1); independent clients'
#      reconnects do not line up. Latency over f's sink baseline.
#
# Usage: bench/compare.sh [--rounds N] [--duration S] [--warmup S] [--idle N]
#                         [--scenarios "a b c d e f g h i"] [--out DIR] [--build-dir DIR]
#                         [--portcullis BINARY] [--port-base P] [--no-install] [--profile]
#                         [--backend-pipelining yes|no] [--tls-keys "KEY = VALUE ..."]
#                         [--cpu-affinity yes|no]
# --backend-pipelining: Portcullis's [backend] pipelining (default yes: like nginx, a
#   client's pipelined MAIL/RCPT/DATA goes to the sink in one write; no = lock-step).
# --cpu-affinity: yes pins each server's 2 workers to the 2 CPUs in the unpinned
#   scenarios, for both alike: nginx worker_cpu_affinity auto, Portcullis [server]
#   cpu_affinity = "auto"; no (default) = the kernel places both. (f, g and h place the
#   servers with taskset and run one worker without either setting.)
# --tls-keys: extra lines for Portcullis's [tls] section ("; " between keys), for A/B
#   runs, e.g. --tls-keys "signing_threads = 0" (handshake signatures on the loops).
# --profile: instead of the table, run scenario a once per server and report system
#   calls per message (perf stat), delayed ACKs (nstat), and for Portcullis a perf
#   profile (top functions, self and inclusive) into OUT/profile.txt.
# Must run as root (installs packages, nginx workers run as www-data). Everything listens
# on 127.0.0.1 only. Defaults: 3 rounds of 6 s windows after 2 s warmup (about 9 minutes).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=3
DURATION=6
WARMUP=2
IDLE=2000
SCENARIOS="a b c d e f g h i"
OUT=""
BUILD_DIR="$ROOT/build-bench"
PORTCULLIS_BIN=""
PORT_BASE=27000
INSTALL=1
PROFILE=0
BACKEND_PIPELINING=yes
CPU_AFFINITY=no
TLS_KEYS=""

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --idle) IDLE=$2; shift 2 ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --build-dir) BUILD_DIR=$2; shift 2 ;;
        --portcullis) PORTCULLIS_BIN=$2; shift 2 ;;
        --port-base) PORT_BASE=$2; shift 2 ;;
        --no-install) INSTALL=0; shift ;;
        --profile) PROFILE=1; shift ;;
        --backend-pipelining) BACKEND_PIPELINING=$2; shift 2 ;;
        --cpu-affinity) CPU_AFFINITY=$2; shift 2 ;;
        --tls-keys) TLS_KEYS=$2; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "compare.sh: unknown option $1" >&2; usage 2 ;;
    esac
done

log() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (installs packages, starts nginx)"
if [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 9 ]; then
    die "--rounds must be 1..9"
fi

SINK_PORT=$((PORT_BASE + 25))
NGINX_HTTP_PORT=$((PORT_BASE + 80))
NGINX_STARTTLS_PORT=$((PORT_BASE + 587))
NGINX_IMPLICIT_PORT=$((PORT_BASE + 465))
PC_STARTTLS_PORT=$((PORT_BASE + 588))
PC_IMPLICIT_PORT=$((PORT_BASE + 466))

# ---------------------------------------------------------------- packages

install_packages() {
    local need=()
    command -v nginx >/dev/null || need+=(nginx)
    [ -f /usr/lib/nginx/modules/ngx_mail_module.so ] || need+=(libnginx-mod-mail)
    command -v smtp-sink >/dev/null || need+=(postfix)
    command -v openssl >/dev/null || need+=(openssl)
    [ "$PROFILE" = 0 ] || command -v perf >/dev/null || need+=(linux-perf)
    [ "$PROFILE" = 0 ] || command -v nstat >/dev/null || need+=(iproute2)
    if [ ${#need[@]} -eq 0 ]; then
        return
    fi
    [ "$INSTALL" = 1 ] || die "missing ${need[*]} and --no-install given"
    log "installing ${need[*]}"
    # Postfix asks how to configure itself: "No configuration" leaves it unconfigured.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    echo "postfix postfix/mailname string bench.invalid" | debconf-set-selections
    # Keep the packages' own services from starting (restored afterwards).
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        added_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
        --no-install-recommends "${need[@]}" >"$OUT/apt.log" 2>&1 ||
        { [ "$added_policy" = 0 ] || rm -f "$policy"; die "apt-get failed, see $OUT/apt.log"; }
    [ "$added_policy" = 0 ] || rm -f "$policy"
}

# The distribution's own nginx and postfix must not hold ports or CPU during the run.
stop_system_services() {
    if [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
        log "stopping the system nginx"
        nginx -s quit 2>/dev/null || kill "$(cat /run/nginx.pid)" || true
    fi
    if [ -s /var/spool/postfix/pid/master.pid ] &&
        kill -0 "$(tr -d ' ' </var/spool/postfix/pid/master.pid)" 2>/dev/null; then
        log "stopping the system postfix"
        postfix stop 2>/dev/null || true
    fi
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_for_port() {  # PORT SECONDS
    local deadline=$((SECONDS + $2))
    until port_in_use "$1"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.05
    done
}

# Alive and not a zombie (our own children stay zombies until waited for).
running() {
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

wait_gone() {  # PID SECONDS
    local deadline=$((SECONDS + $2))
    while running "$1"; do
        if [ $SECONDS -ge $deadline ]; then
            kill -KILL "$1" 2>/dev/null || true
            sleep 0.2
            return 0
        fi
        sleep 0.05
    done
}

# ---------------------------------------------------------------- set-up

setup_dirs() {
    if [ -z "$OUT" ]; then
        OUT=$(mktemp -d /tmp/portcullis-compare.XXXXXX)
    fi
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
    chmod 755 "$OUT"
    RESULTS="$OUT/results.jsonl"
    : >"$RESULTS"
}

build_tools() {
    if [ ! -f "$BUILD_DIR/build.ninja" ]; then
        log "meson setup $BUILD_DIR"
        meson setup "$BUILD_DIR" "$ROOT" >"$OUT/meson-setup.log" 2>&1 ||
            die "meson setup failed, see $OUT/meson-setup.log"
    fi
    BENCH="$BUILD_DIR/src/bench/portcullis-bench"
    local targets=(src/bench/portcullis-bench)
    if [ -z "$PORTCULLIS_BIN" ]; then
        targets+=(portcullis)
        PORTCULLIS_BIN="$BUILD_DIR/portcullis"
    fi
    log "building ${targets[*]} in $BUILD_DIR"
    ninja -C "$BUILD_DIR" "${targets[@]}" >"$OUT/build.log" 2>&1 ||
        die "build failed, see $OUT/build.log"
    # Run private copies, so a rebuild during the run cannot change what is measured.
    mkdir -p "$OUT/bin"
    cp "$BENCH" "$OUT/bin/portcullis-bench"
    BENCH="$OUT/bin/portcullis-bench"
    [ -x "$PORTCULLIS_BIN" ] || die "no portcullis binary at $PORTCULLIS_BIN"
    PORTCULLIS_SOURCE=$(cd "$(dirname "$PORTCULLIS_BIN")" && pwd)/$(basename "$PORTCULLIS_BIN")
    cp "$PORTCULLIS_SOURCE" "$OUT/bin/portcullis"
    PORTCULLIS_BIN="$OUT/bin/portcullis"
}

make_certificate() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$OUT/tls.key" -out "$OUT/tls.crt" -days 7 -subj "/CN=gw.bench.test" \
        >/dev/null 2>&1 || die "cannot create the test certificate"
    chmod 644 "$OUT/tls.crt"
    chmod 600 "$OUT/tls.key"  # nginx reads it as root; Portcullis refuses looser modes
}

# Portcullis config. Keys the gateway under test may not know yet (the credential
# cache and rate limits are being built) are tried one at a time with check-config
# and kept only when accepted; the table header says which were in force.
write_portcullis_config() {
    local dir="$OUT/portcullis"
    mkdir -p "$dir"
    PC_CONFIG="$dir/portcullis.toml"
    PC_USERS="$dir/users.toml"
    : >"$PC_USERS"
    chmod 600 "$PC_USERS"
    local tls_lines=${TLS_KEYS//; /$'\n'}
    PC_BASE=$(cat <<EOF
[server]
hostname = "gw.bench.test"
workers = 2
max_connections = 20000
max_connections_per_ip = 20000

[[listener]]
address = "127.0.0.1:$PC_STARTTLS_PORT"
tls = "starttls"

[[listener]]
address = "127.0.0.1:$PC_IMPLICIT_PORT"
tls = "implicit"

[tls]
certificate = "$OUT/tls.crt"
private_key = "$OUT/tls.key"
$tls_lines

[backend]
address = "127.0.0.1:$SINK_PORT"

[log]
format = "json"
level = "warn"
EOF
)
    PC_SECTIONS=""
    PC_AUTH_KEYS='users_file = "users.toml"'
    PC_OPTIONAL=""
    render_portcullis_config "$PC_SECTIONS" "$PC_AUTH_KEYS" "$PC_CONFIG"
    "$PORTCULLIS_BIN" check-config --config "$PC_CONFIG" >"$OUT/check-config.log" 2>&1 ||
        die "portcullis check-config failed: $(cat "$OUT/check-config.log")"
    # The issue's targets assume the credential cache is on.
    try_portcullis_config "" 'cache_ttl = "5m"' "credential cache 5m" ||
        PC_OPTIONAL="$PC_OPTIONAL; credential cache NOT available in this build"
    # Default per-user rate limits would throttle a benchmark user; raise them if built.
    try_portcullis_config $'[rate_limits]\nmessages = "1000000000/1s"\nrecipients = "1000000000/1s"\nbytes = "1000000000000/1s"' \
        "" "rate limits raised out of the way" ||
        try_portcullis_config $'[rate_limits]\nmessages = "1000000000/1s"\nrecipients = "1000000000/1s"' \
            "" "rate limits raised out of the way" || true
    # nginx passes a client's pipelined commands on as they come; the equivalent here
    # is [backend] pipelining (off by default: lock-step). --backend-pipelining no
    # measures the default.
    if [ "$BACKEND_PIPELINING" = yes ]; then
        local backend="address = \"127.0.0.1:$SINK_PORT\""
        try_base_edit "$backend" "$backend"$'\n'"pipelining = true" "backend pipelining on" \
            "backend pipelining NOT available in this build (lock-step)"
    else
        PC_OPTIONAL="$PC_OPTIONAL; backend lock-step (pipelining off, the default)"
    fi
    # Workers pinned to CPUs, as nginx's worker_cpu_affinity auto does (--cpu-affinity).
    if [ "$CPU_AFFINITY" = yes ]; then
        try_base_edit "workers = 2" "workers = 2"$'\n'"cpu_affinity = \"auto\"" \
            "cpu_affinity auto" "cpu_affinity NOT available in this build"
    fi
    render_portcullis_config "$PC_SECTIONS" "$PC_AUTH_KEYS" "$PC_CONFIG"
    # Scenario f: the same with one worker (the proxy gets one core, given by taskset).
    PC_CONFIG_PINNED="$dir/portcullis-pinned.toml"
    sed -e 's/^workers = 2$/workers = 1/' -e '/^cpu_affinity = /d' "$PC_CONFIG" >"$PC_CONFIG_PINNED"
    grep -q '^workers = 1$' "$PC_CONFIG_PINNED" || die "cannot write the one-worker config"
}

# Replaces FROM by TO in the base config when this build's check-config accepts the
# result (else keeps it); the table header says which edits were in force.
try_base_edit() {  # FROM TO ACCEPTED_NOTE REFUSED_NOTE
    local base=$PC_BASE
    PC_BASE=${PC_BASE/"$1"/"$2"}
    render_portcullis_config "$PC_SECTIONS" "$PC_AUTH_KEYS" "$PC_CONFIG.try"
    if "$PORTCULLIS_BIN" check-config --config "$PC_CONFIG.try" >>"$OUT/check-config.log" 2>&1; then
        PC_OPTIONAL="$PC_OPTIONAL; $3"
    else
        PC_BASE=$base
        PC_OPTIONAL="$PC_OPTIONAL; $4"
    fi
    rm -f "$PC_CONFIG.try"
}

render_portcullis_config() {  # EXTRA_SECTIONS AUTH_KEYS FILE
    printf '%s\n\n%s\n\n[auth]\n%s\n' "$PC_BASE" "$1" "$2" >"$3"
}

# Adds a section and/or [auth] keys when this build's check-config accepts them.
try_portcullis_config() {  # EXTRA_SECTION AUTH_LINE DESCRIPTION
    local sections="$PC_SECTIONS${1:+$'\n'$1}" auth="$PC_AUTH_KEYS${2:+$'\n'$2}"
    render_portcullis_config "$sections" "$auth" "$PC_CONFIG.try"
    if "$PORTCULLIS_BIN" check-config --config "$PC_CONFIG.try" >>"$OUT/check-config.log" 2>&1; then
        PC_SECTIONS=$sections
        PC_AUTH_KEYS=$auth
        PC_OPTIONAL="$PC_OPTIONAL; $3"
        rm -f "$PC_CONFIG.try"
        return 0
    fi
    rm -f "$PC_CONFIG.try"
    return 1
}

create_user() {
    BENCH_USER="bench@example.com"
    BENCH_PASSWORD="Bench-$(openssl rand -hex 12)-Xq9"
    printf '%s\n' "$BENCH_PASSWORD" >"$OUT/password"
    chmod 600 "$OUT/password"
    "$PORTCULLIS_BIN" user add "$BENCH_USER" --password-stdin --config "$PC_CONFIG" \
        <"$OUT/password" >"$OUT/user-add.log" 2>&1 ||
        die "portcullis user add failed: $(cat "$OUT/user-add.log")"
}

write_nginx_config() {
    local dir="$OUT/nginx"
    mkdir -p "$dir/logs" "$dir/tmp"
    chown -R www-data: "$dir/tmp"
    NGINX_CONF="$dir/nginx.conf"
    cat >"$NGINX_CONF" <<EOF
# nginx mail proxy configured like the Portcullis under test: 2 workers, STARTTLS and
# implicit TLS listeners with the same ECDSA P-256 certificate, AUTH PLAIN/LOGIN checked
# by an auth_http location on this same nginx that always says OK and names the sink.
load_module /usr/lib/nginx/modules/ngx_mail_module.so;
user www-data;
worker_processes 2;
$([ "$CPU_AFFINITY" = yes ] && echo "worker_cpu_affinity auto;")
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events {
    worker_connections 10000;
}
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_HTTP_PORT;
        location = /auth {
            add_header Auth-Status OK;
            add_header Auth-Server 127.0.0.1;
            add_header Auth-Port $SINK_PORT;
            return 204;
        }
    }
}
mail {
    server_name gw.bench.test;
    auth_http 127.0.0.1:$NGINX_HTTP_PORT/auth;
    proxy_pass_error_message on;
    xclient off;
    smtp_auth plain login;
    smtp_capabilities "SIZE 52428800" 8BITMIME PIPELINING ENHANCEDSTATUSCODES;
    ssl_certificate $OUT/tls.crt;
    ssl_certificate_key $OUT/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {
        listen 127.0.0.1:$NGINX_STARTTLS_PORT;
        protocol smtp;
        starttls only;
    }
    server {
        listen 127.0.0.1:$NGINX_IMPLICIT_PORT ssl;
        protocol smtp;
    }
}
EOF
    nginx -t -p "$dir" -c "$NGINX_CONF" -e "$dir/logs/error.log" >"$OUT/nginx-t.log" 2>&1 ||
        die "nginx -t failed: $(cat "$OUT/nginx-t.log")"
    # Scenario f: the same with one worker process (the proxy gets one core).
    NGINX_CONF_PINNED="$dir/nginx-pinned.conf"
    sed -e 's/^worker_processes 2;$/worker_processes 1;/' -e '/^worker_cpu_affinity /d' \
        "$NGINX_CONF" >"$NGINX_CONF_PINNED"
    grep -q '^worker_processes 1;$' "$NGINX_CONF_PINNED" || die "cannot write the one-worker nginx config"
}

# ---------------------------------------------------------------- servers

# Scenario f pins the proxy to CPU 1 and the load (bench, sink) to CPU 0; elsewhere
# nothing is pinned.
PINNED=0
server_pin() { [ "$PINNED" = 0 ] || echo "taskset -c 1"; }
load_pin() { [ "$PINNED" = 0 ] || echo "taskset -c 0"; }
pin_sink() {  # on|off
    local cpus="0-$(($(nproc) - 1))"
    [ "$1" = off ] || cpus=0
    taskset -p -c "$cpus" "$SINK_PID" >/dev/null || die "taskset on smtp-sink failed"
}

start_sink() {
    port_in_use "$SINK_PORT" && die "port $SINK_PORT is taken (use --port-base)"
    # -u: smtp-sink refuses to run as root; it drops to nobody after binding.
    smtp-sink -h sink.bench.test -u nobody "127.0.0.1:$SINK_PORT" 1024 \
        >"$OUT/sink.log" 2>&1 &
    SINK_PID=$!
    wait_for_port "$SINK_PORT" 10 || die "smtp-sink did not start: $(cat "$OUT/sink.log")"
}

start_nginx() {
    local dir="$OUT/nginx"
    for p in $NGINX_HTTP_PORT $NGINX_STARTTLS_PORT $NGINX_IMPLICIT_PORT; do
        port_in_use "$p" && die "port $p is taken (use --port-base)"
    done
    local conf=$NGINX_CONF want=2
    [ "$PINNED" = 0 ] || { conf=$NGINX_CONF_PINNED; want=1; }
    $(server_pin) nginx -p "$dir" -c "$conf" -e "$dir/logs/error.log" ||
        die "nginx did not start: $(tail -5 "$dir/logs/error.log")"
    wait_for_port "$NGINX_IMPLICIT_PORT" 10 || die "nginx is not listening"
    SERVER_MAIN_PID=$(cat "$dir/nginx.pid")
    # master + workers (the workers are the master's children)
    local deadline=$((SECONDS + 10)) workers=""
    while :; do
        workers=$(ps -o pid= --ppid "$SERVER_MAIN_PID" | tr -s ' \n' ' ')
        [ "$(wc -w <<<"$workers")" -ge "$want" ] && break
        [ $SECONDS -lt $deadline ] || die "nginx workers did not appear"
        sleep 0.05
    done
    SERVER_PIDS="$SERVER_MAIN_PID $workers"
}

stop_nginx() {
    [ -n "${SERVER_MAIN_PID:-}" ] || return 0
    kill -TERM "$SERVER_MAIN_PID" 2>/dev/null || true
    wait_gone "$SERVER_MAIN_PID" 10
    SERVER_MAIN_PID=""
}

start_portcullis() {
    for p in $PC_STARTTLS_PORT $PC_IMPLICIT_PORT; do
        port_in_use "$p" && die "port $p is taken (use --port-base)"
    done
    local conf=$PC_CONFIG
    [ "$PINNED" = 0 ] || conf=$PC_CONFIG_PINNED
    $(server_pin) "$PORTCULLIS_BIN" serve --config "$conf" >>"$OUT/portcullis/portcullis.log" 2>&1 &
    SERVER_MAIN_PID=$!
    if ! wait_for_port "$PC_IMPLICIT_PORT" 10 || ! wait_for_port "$PC_STARTTLS_PORT" 10; then
        die "portcullis did not start: $(tail -5 "$OUT/portcullis/portcullis.log")"
    fi
    SERVER_PIDS="$SERVER_MAIN_PID"  # one process; /proc/PID/stat covers all its threads
}

stop_portcullis() {
    [ -n "${SERVER_MAIN_PID:-}" ] || return 0
    kill -TERM "$SERVER_MAIN_PID" 2>/dev/null || true
    wait_gone "$SERVER_MAIN_PID" 15
    wait "$SERVER_MAIN_PID" 2>/dev/null || true
    SERVER_MAIN_PID=""
}

CURRENT_SERVER=""
cleanup() {
    set +e
    case "$CURRENT_SERVER" in
        nginx) stop_nginx ;;
        portcullis) stop_portcullis ;;
    esac
    if [ -n "${SINK_PID:-}" ]; then
        kill -TERM "$SINK_PID" 2>/dev/null
        wait_gone "$SINK_PID" 5
        wait "$SINK_PID" 2>/dev/null
    fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- scenarios

server_port() {  # SERVER starttls|implicit
    case "$1-$2" in
        nginx-starttls) echo "$NGINX_STARTTLS_PORT" ;;
        nginx-implicit) echo "$NGINX_IMPLICIT_PORT" ;;
        portcullis-starttls) echo "$PC_STARTTLS_PORT" ;;
        portcullis-implicit) echo "$PC_IMPLICIT_PORT" ;;
    esac
}

watch_args() {
    local p
    for p in $SERVER_PIDS; do printf -- '--watch-pid %s ' "$p"; done
}

# Runs the bench, tags its JSON with round/scenario/server and appends it to RESULTS.
record() {  # ROUND SCENARIO SERVER EXTRA_JSON -- bench args...
    local round=$1 scenario=$2 server=$3 extra=$4
    shift 5
    local json rc=0 load
    load=$(cut -d' ' -f1 /proc/loadavg)
    json=$(PORTCULLIS_BENCH_PASSWORD="$BENCH_PASSWORD" $(load_pin) "$BENCH" --json "$@") || rc=$?
    if [ -z "$json" ]; then
        die "portcullis-bench printed nothing (exit $rc) for $scenario/$server"
    fi
    printf '%s\n' "$json" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
r.update({"round": int(sys.argv[1]), "scenario": sys.argv[2], "server": sys.argv[3],
          "bench_exit": int(sys.argv[4]), "loadavg_before": float(sys.argv[6])})
r.update(json.loads(sys.argv[5]))
print(json.dumps(r))' "$round" "$scenario" "$server" "$rc" "$extra" "$load" >>"$RESULTS"
    python3 - "$RESULTS" <<'PY' >&2
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
if r["kind"] == "idle":
    print("    %-10s ready %d/%d  %.2f KiB/conn  failures %d" % (
        r["server"], r["ready"], r["requested"], r.get("rss_per_connection_kib", float("nan")),
        r["failures"]))
else:
    print("    %-10s %9.1f msg/s %8.1f sess/s %8.2f MB/s  p99 %7.3f ms (socket %.3f)  cpu %s us/msg  failures %d" % (
        r["server"], r["messages_per_s"], r["sessions_per_s"], r["mb_per_s"],
        r["latency_ms"]["p99"], r.get("socket_latency_ms", {}).get("p99", float("nan")),
        r.get("server_cpu_us_per_message"), r["failures"]))
PY
}

common_load_args() {  # SERVER MODE
    printf -- '--target 127.0.0.1:%s --mode %s --auth plain --user %s --duration %s --warmup %s' \
        "$(server_port "$1" "$2")" "$2" "$BENCH_USER" "$DURATION" "$WARMUP"
}

run_scenario() {  # ROUND SCENARIO SERVER
    local round=$1 scenario=$2 server=$3
    # shellcheck disable=SC2046
    case "$scenario" in
        a) record "$round" a "$server" '{}' -- $(common_load_args "$server" starttls) \
               --clients 50 --messages-per-connection 100 --size 1KiB $(watch_args) ;;
        b) record "$round" b "$server" '{}' -- $(common_load_args "$server" starttls) \
               --clients 50 --messages-per-connection 1 --size 1KiB $(watch_args) ;;
        c) record "$round" c "$server" '{}' -- $(common_load_args "$server" implicit) \
               --clients 8 --messages-per-connection 100 --size 1MiB $(watch_args) ;;
        d) record "$round" d "$server" '{}' -- --target "127.0.0.1:$(server_port "$server" implicit)" \
               --mode implicit --idle "$IDLE" --idle-parallel 50 --settle 2 $(watch_args) ;;
        e) record "$round" e "$server" "{\"rate\": $E_RATE}" -- \
               $(common_load_args "$server" starttls) --clients 50 \
               --messages-per-connection 100 --size 1KiB --rate "$E_RATE" $(watch_args) ;;
        f-peak) record "$round" f-peak "$server" '{}' -- $(common_load_args "$server" starttls) \
               --clients 50 --messages-per-connection 100 --size 1KiB $(watch_args) ;;
        f) record "$round" f "$server" "{\"rate\": $F_RATE}" -- \
               $(common_load_args "$server" starttls) --clients 50 \
               --messages-per-connection 100 --size 1KiB --rate "$F_RATE" $(watch_args) ;;
        g) record "$round" g "$server" "{\"rate\": $F_RATE}" -- \
               $(common_load_args "$server" starttls) --clients 50 \
               --messages-per-connection 100 --size 1KiB --rate "$F_RATE" --resume \
               $(watch_args) ;;
        i) record "$round" i "$server" "{\"rate\": $E_RATE}" -- \
               $(common_load_args "$server" starttls) --clients 50 \
               --messages-per-connection 100 --size 1KiB --rate "$E_RATE" --stagger \
               $(watch_args) ;;
        h) record "$round" h "$server" "{\"rate\": $F_RATE}" -- \
               $(common_load_args "$server" starttls) --clients 50 \
               --messages-per-connection 100 --size 1KiB --rate "$F_RATE" --stagger \
               $(watch_args) ;;
    esac
}

with_server() {  # SERVER FUNCTION ARGS...
    local server=$1
    shift
    CURRENT_SERVER=$server
    "start_$server"
    "$@"
    "stop_$server"
    CURRENT_SERVER=""
}

# Half the lower of the two peaks of scenario a (or f-peak) in this round, so both
# servers get the same offered load and neither runs above half its own peak.
half_peak_for_round() {  # ROUND PEAK-SCENARIO
    python3 - "$RESULTS" "$1" "$2" <<'PY'
import json, sys
peaks = [r["messages_per_s"] for r in map(json.loads, open(sys.argv[1]))
         if r["scenario"] == sys.argv[3] and r["round"] == int(sys.argv[2])]
print(max(1, int(min(peaks) / 2)) if len(peaks) == 2 else "")
PY
}

# The sink on its own at RATE messages/s (plain, no proxy): the latency baseline.
record_sink_direct() {  # ROUND SCENARIO RATE
    SERVER_PIDS="$SINK_PID"
    record "$1" "$2" sink "{\"rate\": $3}" -- --target "127.0.0.1:$SINK_PORT" \
        --mode plain --auth none --clients 50 --messages-per-connection 100 --size 1KiB \
        --duration "$DURATION" --warmup "$WARMUP" --rate "$3" --watch-pid "$SINK_PID"
}

# Scenario f: peak and paced runs with the proxy pinned to CPU 1, the load to CPU 0.
run_pinned() {  # ROUND ORDER...
    local round=$1 server
    shift
    [ "$(nproc)" -ge 2 ] || { log "  f needs 2 CPUs; skipped"; return; }
    PINNED=1
    pin_sink on
    log "  scenario f: peak, proxy on CPU 1, bench and sink on CPU 0"
    for server in "$@"; do
        with_server "$server" run_scenario "$round" f-peak "$server"
    done
    F_RATE=$(half_peak_for_round "$round" f-peak)
    log "  scenario f at $F_RATE messages/s"
    record_sink_direct "$round" f "$F_RATE"
    for server in "$@"; do
        with_server "$server" run_scenario "$round" f "$server"
    done
    if [[ " $SCENARIOS " == *" g "* ]]; then
        log "  scenario g at $F_RATE messages/s, TLS sessions resumed"
        for server in "$@"; do
            with_server "$server" run_scenario "$round" g "$server"
        done
    fi
    if [[ " $SCENARIOS " == *" h "* ]]; then
        log "  scenario h at $F_RATE messages/s, reconnects spread (--stagger)"
        for server in "$@"; do
            with_server "$server" run_scenario "$round" h "$server"
        done
    fi
    pin_sink off
    PINNED=0
}

# ---------------------------------------------------------------- main

setup_dirs
install_packages
stop_system_services
build_tools
NOFILE_NEEDED=$((IDLE * 2 + 1024))
if [ "$(ulimit -n)" -lt "$NOFILE_NEEDED" ]; then
    ulimit -n "$NOFILE_NEEDED" 2>/dev/null || die "ulimit -n $NOFILE_NEEDED refused; lower --idle"
fi
make_certificate
write_portcullis_config
create_user
write_nginx_config
start_sink

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
    # shellcheck disable=SC1091
    echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "nginx: $(nginx -v 2>&1 | sed 's/.*: //') with $(dpkg-query -W -f '${Package} ${Version}' libnginx-mod-mail), $(dpkg-query -W -f 'libssl3 ${Version}' libssl3 2>/dev/null), worker_cpu_affinity: $([ "$CPU_AFFINITY" = yes ] && echo auto || echo none) (f, g, h: taskset)"
    echo "portcullis: copy of $PORTCULLIS_SOURCE ($("$PORTCULLIS_BIN" --version 2>/dev/null || echo "version unknown"); repo at $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)), workers 2$PC_OPTIONAL"
    echo "sink: postfix smtp-sink $(dpkg-query -W -f '${Version}' postfix)"
    echo "settings: $ROUNDS rounds, ${DURATION} s windows after ${WARMUP} s warmup, idle N = $IDLE, ulimit -n $(ulimit -n)"
} >"$OUT/environment.txt"
cat "$OUT/environment.txt" >&2

# ---------------------------------------------------------------- profile mode

SYSCALLS="read write writev readv recvfrom sendto recvmsg sendmsg epoll_wait epoll_ctl"

# Scenario a against the running server; perf stat on its processes for PERF_S seconds
# in the middle of the window, then (Portcullis only) perf record for as long again.
profile_server() {  # SERVER
    local server=$1 perf_s=$((DURATION / 2 > 2 ? DURATION / 2 : 2)) events p pidlist
    events="raw_syscalls:sys_enter"
    for p in $SYSCALLS; do events="$events,syscalls:sys_enter_$p"; done
    # shellcheck disable=SC2086
    pidlist=$(echo $SERVER_PIDS | tr ' ' ',')
    # shellcheck disable=SC2046
    PORTCULLIS_BENCH_PASSWORD="$BENCH_PASSWORD" "$BENCH" --json --mode starttls --auth plain \
        --target "127.0.0.1:$(server_port "$server" starttls)" --user "$BENCH_USER" \
        --clients 50 --messages-per-connection 100 --size 1KiB --warmup "$WARMUP" \
        --duration $((perf_s * 2 + 2)) $(watch_args) >"$OUT/profile-$server.json" &
    local bench_pid=$!
    sleep "$((WARMUP + 1))"
    nstat -n >/dev/null 2>&1 || true
    perf stat -e "$events" -p "$pidlist" -o "$OUT/perf-stat-$server.txt" -- sleep "$perf_s" \
        2>>"$OUT/perf.log" || die "perf stat failed, see $OUT/perf.log"
    nstat 2>/dev/null | grep -E "DelayedACKs |TcpOutSegs |TcpInSegs " >"$OUT/nstat-$server.txt" ||
        true
    if [ "$server" = portcullis ]; then
        perf record -F 499 --call-graph dwarf,16384 -p "$SERVER_MAIN_PID" \
            -o "$OUT/perf-portcullis.data" -- sleep "$perf_s" >>"$OUT/perf.log" 2>&1 ||
            die "perf record failed, see $OUT/perf.log"
    fi
    wait "$bench_pid" || true
    # The same at half the rate just measured, paced: latency and delayed ACKs.
    local rate
    rate=$(python3 -c 'import json,sys; print(max(1, int(json.load(open(sys.argv[1]))["messages_per_s"] / 2)))' \
        "$OUT/profile-$server.json")
    nstat -n >/dev/null 2>&1 || true
    # shellcheck disable=SC2046
    PORTCULLIS_BENCH_PASSWORD="$BENCH_PASSWORD" "$BENCH" --json --mode starttls --auth plain \
        --target "127.0.0.1:$(server_port "$server" starttls)" --user "$BENCH_USER" \
        --clients 50 --messages-per-connection 100 --size 1KiB --warmup 0 --rate "$rate" \
        --duration "$perf_s" $(watch_args) >"$OUT/profile-paced-$server.json" || true
    nstat 2>/dev/null | grep -E "DelayedACKs " >"$OUT/nstat-paced-$server.txt" || true
}

profile_report() {
    python3 - "$OUT" "$SYSCALLS" <<'PY'
import json, re, sys
out, names = sys.argv[1], sys.argv[2].split()
print("System calls per message, scenario a (count over the perf stat window / "
      "(bench rate x window)); TCP counters over the same window (nstat):")
print("%-28s %10s %12s" % ("", "nginx", "portcullis"))
rows = {}
for server in ("nginx", "portcullis"):
    r = json.load(open("%s/profile-%s.json" % (out, server)))
    text = open("%s/perf-stat-%s.txt" % (out, server)).read()
    secs = float(re.search(r"([\d.]+) seconds time elapsed", text).group(1))
    msgs = r["messages_per_s"] * secs
    rows.setdefault("messages/s", {})[server] = r["messages_per_s"]
    rows.setdefault("cpu us/message", {})[server] = r.get("server_cpu_us_per_message")
    for m in re.finditer(r"^\s*([\d,]+)\s+(?:raw_)?syscalls:sys_enter_?(\w*)", text, re.M):
        name = m.group(2) or "all syscalls"
        rows.setdefault(name, {})[server] = int(m.group(1).replace(",", "")) / msgs
    for line in open("%s/nstat-%s.txt" % (out, server)):
        k, v = line.split()[:2]
        rows.setdefault(k.replace("TcpExt", "").replace("Tcp", "") + " /message", {})[server] = int(v) / msgs
for server in ("nginx", "portcullis"):
    r = json.load(open("%s/profile-paced-%s.json" % (out, server)))
    rows.setdefault("paced: offered msg/s", {})[server] = r["rate_cap"]
    for p in ("p50", "p90", "p99", "max"):
        rows.setdefault("paced: %s latency ms" % p, {})[server] = r["latency_ms"][p]
    delayed = 0
    for line in open("%s/nstat-paced-%s.txt" % (out, server)):
        delayed += int(line.split()[1])
    rows.setdefault("paced: DelayedACKs /message", {})[server] = delayed / max(1, r["messages"])
for k, v in rows.items():
    if any(v.get(s) for s in ("nginx", "portcullis")):
        print("%-28s %10s %12s" % (k, *("%.2f" % v[s] if v.get(s) is not None else "-"
                                         for s in ("nginx", "portcullis"))))
PY
    echo
    echo "Portcullis, scenario a: where the CPU goes by library (perf, self time):"
    perf_top 8 --no-children --sort dso
    echo
    echo "Portcullis, scenario a: top functions, inclusive (children) time, user space:"
    perf_top 80 --children --sort symbol | grep -v '\[k\]' | head -25 || true
    echo
    echo "Portcullis, scenario a: top functions, self time:"
    perf_top 20 --no-children --sort dso,symbol
}

# The first N lines of a perf report of the Portcullis profile (head ends the pipe early,
# which is expected: no pipefail here).
perf_top() {  # N PERF-REPORT-OPTIONS...
    local n=$1
    shift
    (
        set +o pipefail
        perf report -i "$OUT/perf-portcullis.data" --stdio -g none "$@" 2>/dev/null |
            grep -E '^ +[0-9.]+%' | grep -v -E ' 0x0000|0xffffffffffffffff' |
            sed -E 's/ +$//; s/ {2,}- +-$//' | head -"$n"
    )
}

if [ "$PROFILE" = 1 ]; then
    command -v perf >/dev/null || die "--profile needs perf (Debian package linux-perf)"
    for server in nginx portcullis; do
        log "profiling scenario a against $server"
        with_server "$server" profile_server "$server"
    done
    profile_report | tee "$OUT/profile.txt"
    exit 0
fi

for round in $(seq 1 "$ROUNDS"); do
    # Alternate who goes first so slow drift (thermal, other load) hits both alike.
    if [ $((round % 2)) = 1 ]; then order="nginx portcullis"; else order="portcullis nginx"; fi
    log "round $round/$ROUNDS ($order first), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    for scenario in $SCENARIOS; do
        if [ "$scenario" = f ]; then
            # shellcheck disable=SC2086
            run_pinned "$round" $order  # g and h too, when asked for
            continue
        fi
        [ "$scenario" != g ] && [ "$scenario" != h ] || continue  # run with f
        [ "$scenario" != i ] || continue                            # runs with e
        if [ "$scenario" = e ]; then
            E_RATE=$(half_peak_for_round "$round" a)
            [ -n "$E_RATE" ] || { log "  e needs scenario a in the same round; skipped"; continue; }
            log "  scenario e at $E_RATE messages/s"
            record_sink_direct "$round" e "$E_RATE"
            if [[ " $SCENARIOS " == *" i "* ]]; then
                for server in $order; do
                    with_server "$server" run_scenario "$round" e "$server"
                done
                log "  scenario i at $E_RATE messages/s, reconnects spread (--stagger)"
                for server in $order; do
                    with_server "$server" run_scenario "$round" i "$server"
                done
                continue
            fi
        else
            log "  scenario $scenario"
        fi
        for server in $order; do
            with_server "$server" run_scenario "$round" "$scenario" "$server"
        done
    done
done

python3 "$ROOT/bench/summarize.py" "$RESULTS" "$OUT/environment.txt" | tee "$OUT/table.md"
log "raw results: $RESULTS"
