#!/usr/bin/env bash
# Developer entry point.
#
#   ./dev.sh test   install what is missing, build (normal + ASan/UBSan), run the unit
#                   tests, the end-to-end suite and a short fuzz run; prints a summary
#                   and ends with "N passed, N failed"; exits non-zero on any failure.
#   ./dev.sh demo   build and run a local gateway with a throwaway certificate, one demo
#                   user and a recording backend; prints swaks/curl lines to try it.
#   ./dev.sh container-test
#                   build the container image with podman and test it in front of a
#                   recording backend (scripts/container-test.sh); also the "container"
#                   suite of ./dev.sh test, skipped when podman cannot run containers.
#
# Works as root on a minimal Debian 12 (no compiler, no sudo needed).
set -uo pipefail

cd "$(dirname "$(readlink -f "$0")")"
ROOT=$PWD
JOBS=2

PACKAGES=(
  build-essential g++ clang libclang-rt-14-dev meson ninja-build pkg-config
  libuv1-dev android-libboringssl-dev libsodium-dev libtomlplusplus-dev catch2
  libcli11-dev libfmt-dev libzxcvbn-dev
  python3 swaks libnet-ssleay-perl curl openssl ca-certificates clang-format procps
  testssl.sh
  postfix
  libhiredis-dev redis-server
  prometheus-cpp-dev prometheus fail2ban
  argon2 python3-yaml systemd podman runc debootstrap
)

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'dev.sh: %s\n' "$*" >&2; exit 1; }

ensure_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing missing packages: ${missing[*]}"
  local SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: install ${missing[*]} first"
    SUDO=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  # postfix is the real MTA of tests/e2e/test_postfix.py. "No configuration" leaves the
  # system without /etc/postfix/main.cf, so the system's own Postfix service never
  # starts; the tests run private instances (postfix -c DIR) on loopback ports.
  echo "postfix postfix/main_mailer_type select No configuration" |
    "${SUDO[@]}" debconf-set-selections || die "debconf-set-selections failed"
  "${SUDO[@]}" apt-get update -q || die "apt-get update failed"
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || die "apt-get install failed"
  # prometheus (for promtool), fail2ban (for fail2ban-regex) and redis-server (tests start
  # their own) are installed for their tools only; their packages enable daemons, which must not keep running here.
  local svc
  for svc in prometheus fail2ban redis-server; do
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      "${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$svc" ]; then
      "${SUDO[@]}" "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
  done
}

# build DIR COMPILER [meson options...]: configure (reconfigure if it exists; wipe only
# if that fails; start over if it was set up with another compiler) and compile.
# COMPILER is gcc or clang. Returns non-zero on failure.
build() {
  local dir=$1 compiler=$2; shift 2
  local cc=gcc cxx=g++
  [ "$compiler" = clang ] && cc=clang cxx=clang++
  local was=gcc
  if grep -A2 '^rule cpp_COMPILER' "$dir/build.ninja" 2>/dev/null | grep -q 'command = clang'; then
    was=clang
  fi
  if [ -f "$dir/build.ninja" ] && [ "$was" != "$compiler" ]; then
    echo "$dir was configured with another compiler: starting it over with $compiler"
    rm -rf "$dir"
  fi
  log "meson setup $dir --werror $* ($compiler)"
  if [ -f "$dir/build.ninja" ]; then
    CC=$cc CXX=$cxx meson setup --reconfigure "$dir" --werror "$@" \
      || CC=$cc CXX=$cxx meson setup --wipe "$dir" --werror "$@" \
      || { rm -rf "$dir" && CC=$cc CXX=$cxx meson setup "$dir" --werror "$@"; } || return 1
  else
    rm -rf "$dir"
    CC=$cc CXX=$cxx meson setup "$dir" --werror "$@" || return 1
  fi
  log "ninja -C $dir -j$JOBS"
  ninja -C "$dir" -j"$JOBS"
}

# ---------------------------------------------------------------- test bookkeeping

SUITES=()   # "name passed failed"
TOTAL_PASSED=0
TOTAL_FAILED=0

record() {  # record NAME PASSED FAILED
  SUITES+=("$1 $2 $3")
  TOTAL_PASSED=$((TOTAL_PASSED + $2))
  TOTAL_FAILED=$((TOTAL_FAILED + $3))
}

# Counts Catch2 JUnit test cases: "PASSED FAILED" on stdout, failing names on stderr.
count_junit() {
  python3 - "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError) as e:
    print("cannot read %s: %s" % (sys.argv[1], e), file=sys.stderr)
    print("0 0")
    sys.exit(0)
passed = failed = 0
for tc in root.iter("testcase"):
    bad = tc.findall("failure") + tc.findall("error")
    if bad:
        failed += 1
        print("  FAIL %s" % tc.get("name"), file=sys.stderr)
        for f in bad[:3]:
            text = (f.get("message") or "") + "\n" + (f.text or "")
            print("    " + text.strip().replace("\n", "\n    ")[:1500], file=sys.stderr)
    else:
        passed += 1
print("%d %d" % (passed, failed))
EOF
}

run_unit() {  # run_unit SUITE BUILD_DIR
  local suite=$1 dir=$2 bin=$2/tests/unit/unit_tests xml=$2/unit-junit.xml rc counts
  log "$suite: $bin"
  if [ ! -x "$bin" ]; then
    echo "no unit test binary at $bin"
    record "$suite" 0 1
    return
  fi
  rm -f "$xml"
  timeout 900 "$bin" -r junit -o "$xml" >"$dir/unit.log" 2>&1
  rc=$?
  counts=$(count_junit "$xml")
  local p=${counts% *} f=${counts#* }
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "unit test binary exited $rc without a failing test case (crash or sanitizer):"
    tail -n 40 "$dir/unit.log"
    f=1
  fi
  echo "$suite: $p passed, $f failed"
  record "$suite" "$p" "$f"
}

run_e2e() {  # run_e2e SUITE BUILD_DIR
  local suite=$1 dir=$2 out last p f
  log "$suite: python3 tests/e2e/run.py --binary $dir/portcullis"
  out="$dir/e2e.log"
  python3 tests/e2e/run.py --binary "$dir/portcullis" 2>&1 | tee "$out"
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
  if [ -z "$last" ]; then
    echo "$suite: the e2e runner did not finish"
    record "$suite" 0 1
    return
  fi
  p=${last%% passed*}
  f=${last#*, }; f=${f%% failed}
  if [ $((p + f)) -eq 0 ]; then
    echo "$suite: no e2e tests were found"
    f=1
  fi
  record "$suite" "$p" "$f"
}

run_tls_scan() {  # testssl.sh against the STARTTLS and implicit-TLS listeners
  local out=build/tls-scan.log last p f
  log "tls-scan: python3 tests/e2e/tls_scan.py --binary build/portcullis"
  timeout 1200 python3 tests/e2e/tls_scan.py --binary build/portcullis \
    --report build/tls-scan-report.txt 2>&1 | tee "$out"
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
  if [ -z "$last" ]; then
    echo "tls-scan: the scan did not finish"
    record "tls-scan" 0 1
    return
  fi
  p=${last%% passed*}
  f=${last#*, }; f=${f%% failed}
  record "tls-scan" "$p" "$f"
}

run_fuzz() {
  local out=build/fuzz.log p f rc
  log "fuzz: scripts/fuzz.sh 5"
  mkdir -p build
  timeout 900 scripts/fuzz.sh 5 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  # one test per target: fuzz.sh prints "TARGET  executions: N  crashes: N"
  p=$(grep -cE '^[A-Za-z0-9_]+ +executions: +[^ ]+ +crashes: +0$' "$out")
  f=$(grep -E '^[A-Za-z0-9_]+ +executions: ' "$out" | grep -cvE 'executions: +[^ ]+ +crashes: +0$')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then  # build failure or a crash it did not list
    echo "fuzz: scripts/fuzz.sh exited $rc"
    f=1
  elif [ $((p + f)) -eq 0 ]; then
    echo "fuzz: no per-target results"
    f=1
  fi
  record "fuzz" "$p" "$f"
}

# scripts/container-test.sh: the image built and run with podman. Exit code 77 means
# podman cannot run containers on this machine: the suite is skipped, not failed.
run_container() {
  local out=build/container-test.log last p f rc
  log "container: scripts/container-test.sh"
  mkdir -p build
  # A cold first run (debootstrap of the base images, the build stage's apt-get, a full
  # compile) takes about 9 minutes, too long for every test run; with the base images
  # in podman's store it takes about one. So the suite runs where `./dev.sh
  # container-test` has run once, and says so where it has not.
  if ! command -v podman >/dev/null || ! podman image exists debian:bookworm-slim ||
    ! podman image exists debian:bookworm; then
    echo "container: SKIPPED (no base images in podman's store; run ./dev.sh container-test once, about 9 minutes)"
    SUITES+=("container(skipped) 0 0")
    return
  fi
  timeout 1800 scripts/container-test.sh 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 77 ]; then
    echo "container: SKIPPED ($(grep -m1 '^SKIPPED' "$out"))"
    SUITES+=("container(skipped) 0 0")
    return
  fi
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
  if [ -z "$last" ]; then
    echo "container: scripts/container-test.sh exited $rc without a result"
    record "container" 0 1
    return
  fi
  p=${last%% passed*}
  f=${last#*, }; f=${f%% failed}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
  fi
  record "container" "$p" "$f"
}

cmd_test() {
  local started=$SECONDS
  ensure_packages

  if build build gcc; then
    record "build" 1 0
    run_unit unit build
    run_e2e e2e build
    run_tls_scan
  else
    record "build" 0 1
  fi

  if build build-asan gcc -Db_sanitize=address,undefined -Db_lundef=false; then
    record "asan:build" 1 0
    export ASAN_OPTIONS=detect_leaks=1
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    run_unit asan:unit build-asan
    run_e2e asan:e2e build-asan
    unset ASAN_OPTIONS UBSAN_OPTIONS
  else
    record "asan:build" 0 1
  fi

  if [ -x scripts/fuzz.sh ]; then
    run_fuzz
  elif [ -f scripts/fuzz.sh ]; then
    echo "scripts/fuzz.sh is not executable"
    record "fuzz" 0 1
  fi

  run_container

  log "summary ($(( (SECONDS - started) / 60 ))m$(( (SECONDS - started) % 60 ))s)"
  local s name p f
  for s in "${SUITES[@]}"; do
    read -r name p f <<<"$s"
    printf '  %-12s %5d passed, %3d failed\n' "$name" "$p" "$f"
  done
  echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
  [ "$TOTAL_FAILED" -eq 0 ]
}

# ---------------------------------------------------------------- demo

cmd_demo() {
  ensure_packages
  build build gcc || die "build failed"

  log "preparing demo/"
  rm -rf demo
  mkdir -p demo/mail
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout demo/key.pem -out demo/cert.pem 2>/dev/null || die "openssl req failed"
  chmod 600 demo/key.pem

  cat >demo/portcullis.toml <<'EOF'
# Demo configuration written by ./dev.sh demo (throwaway; demo/ is gitignored).
[server]
hostname = "localhost"
workers = 2

[[listener]]
address = "127.0.0.1:5870"
tls = "starttls"

[[listener]]
address = "127.0.0.1:4650"
tls = "implicit"

[tls]
certificate = "cert.pem"
private_key = "key.pem"

[backend]
address = "127.0.0.1:2525"

[auth]
users_file = "users.toml"
failure_delay = "1s"

[log]
format = "text"
level = "info"
EOF
  printf '# Demo users, managed with: ./build/portcullis user ... --config demo/portcullis.toml\n' \
    >demo/users.toml

  local password
  password=$(openssl rand -base64 32 | tr -dc 'A-Za-z0-9' | head -c 24)
  printf '%s\n' "$password" |
    ./build/portcullis user add demo@example.com --password-stdin --config demo/portcullis.toml \
    || die "could not create the demo user"

  printf 'From: demo@example.com\r\nTo: someone@example.net\r\nSubject: Hello through Portcullis\r\n\r\nIt works.\r\n' \
    >demo/message.eml

  local backend_pid gateway_pid
  python3 tests/e2e/recording_backend.py --port 2525 --dir demo/mail \
    >demo/backend.out 2>demo/backend.log &
  backend_pid=$!
  stop_demo() {
    trap - INT TERM EXIT
    echo
    echo "stopping gateway and backend"
    kill "$gateway_pid" 2>/dev/null
    kill "$backend_pid" 2>/dev/null
    wait "$gateway_pid" 2>/dev/null
    wait "$backend_pid" 2>/dev/null
    exit 0
  }
  gateway_pid=
  trap stop_demo INT TERM EXIT
  for _ in $(seq 50); do
    grep -q READY demo/backend.out 2>/dev/null && break
    kill -0 "$backend_pid" 2>/dev/null || { cat demo/backend.log; die "backend failed (port 2525 busy?)"; }
    sleep 0.1
  done

  ./build/portcullis serve --config demo/portcullis.toml >demo/portcullis.log 2>&1 &
  gateway_pid=$!
  local up=
  for _ in $(seq 50); do
    kill -0 "$gateway_pid" 2>/dev/null || break
    if ./build/portcullis healthcheck --config demo/portcullis.toml >/dev/null 2>&1; then
      up=1; break
    fi
    sleep 0.2
  done
  if [ -z "$up" ]; then
    cat demo/portcullis.log
    die "the gateway did not come up"
  fi

  cat <<EOF

Portcullis demo is running.
  gateway   STARTTLS 127.0.0.1:5870, implicit TLS 127.0.0.1:4650   (log: demo/portcullis.log)
  backend   127.0.0.1:2525, messages saved under demo/mail/        (log: demo/backend.log)
  user      demo@example.com   password: $password

Send a message with STARTTLS (swaks):
  swaks --server 127.0.0.1:5870 --tls --auth PLAIN --auth-user demo@example.com --auth-password '$password' --from demo@example.com --to someone@example.net

Send one over implicit TLS (curl; --insecure because the certificate is self-signed):
  curl --ssl-reqd --insecure smtps://127.0.0.1:4650 --user 'demo@example.com:$password' --mail-from demo@example.com --mail-rcpt someone@example.net --upload-file demo/message.eml

Then look at demo/mail/msg-1.eml and demo/mail/conn-1.raw. Ctrl-C stops both.
EOF
  wait -n "$gateway_pid" "$backend_pid"
  echo "a demo process exited; see demo/portcullis.log and demo/backend.log"
  stop_demo
}

case "${1:-}" in
  test) cmd_test ;;
  demo) cmd_demo ;;
  container-test)
    ensure_packages
    scripts/container-test.sh
    ;;
  *)
    echo "usage: $0 test|demo|container-test" >&2
    exit 2
    ;;
esac
