#!/usr/bin/env bash
# Builds the container image (container/Containerfile) with podman and tests it for real:
# the image runs (host network) in front of tests/e2e/recording_backend.py with a
# throwaway certificate and a user made by the image's own `portcullis user add`, swaks
# sends a message through STARTTLS + AUTH, the backend must have received it byte for
# byte, the HEALTHCHECK must pass, the gateway must run as non-root and SIGTERM must end
# it with exit code 0 in time. Ends with "N passed, N failed".
#
#   scripts/container-test.sh [--image NAME] [--keep]
#
# No registry is reachable here, so the base images debian:bookworm-slim and
# debian:bookworm are made from Debian's archive with debootstrap when missing.
# Exit codes: 0 all passed, 1 a check failed, 77 skipped (podman cannot run containers
# on this machine; the reason is printed).
set -uo pipefail

cd "$(dirname "$(readlink -f "$0")")/.."
ROOT=$PWD

IMAGE=localhost/portcullis:test
KEEP=
while [ $# -gt 0 ]; do
  case $1 in
    --image) IMAGE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "usage: $0 [--image NAME] [--keep]" >&2; exit 2 ;;
  esac
done

# What this machine's podman needs (runc: crun cannot set up the cgroups here; the
# ulimits: the default ones exceed the machine's hard limits).
PODMAN_RUN=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1000:1000)
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
STOP_LIMIT=10   # seconds SIGTERM may take (the gateway's drain plus start-up slack)

PASSED=0
FAILED=0
started=$SECONDS
pass() { PASSED=$((PASSED + 1)); printf 'PASS %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$*"; }
skip() { printf 'SKIPPED container tests: %s\n' "$*"; exit 77; }
summary() {
  echo "container tests took $((SECONDS - started))s"
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

command -v podman >/dev/null || skip "podman is not installed (apt-get install podman runc)"
for tool in swaks openssl python3; do
  command -v "$tool" >/dev/null || { echo "container-test: $tool is missing" >&2; exit 1; }
done

# ---------------------------------------------------------------- base images

make_base_images() {
  if podman image exists debian:bookworm-slim && podman image exists debian:bookworm; then
    return 0
  fi
  command -v debootstrap >/dev/null || skip "no debian:bookworm-slim image and no debootstrap"
  local dir
  dir=$(mktemp -d /var/tmp/portcullis-rootfs.XXXXXX)
  echo "==> debootstrap --variant=minbase bookworm $dir $MIRROR"
  if ! debootstrap --variant=minbase bookworm "$dir" "$MIRROR" >"$dir.log" 2>&1; then
    tail -n 20 "$dir.log"
    rm -rf "$dir" "$dir.log"
    echo "container-test: debootstrap failed" >&2
    exit 1
  fi
  # What a slim image leaves out: documentation, translations, apt caches.
  tar -C "$dir" --exclude='./usr/share/doc/*' --exclude='./usr/share/man/*' \
    --exclude='./usr/share/info/*' --exclude='./usr/share/locale/*' \
    --exclude='./var/cache/apt/*' --exclude='./var/lib/apt/lists/*' -c . |
    podman import - debian:bookworm-slim >/dev/null || { echo "podman import failed" >&2; exit 1; }
  podman tag debian:bookworm-slim debian:bookworm
  rm -rf "$dir" "$dir.log"
}

make_base_images
why=$(podman run --rm "${PODMAN_RUN[@]}" --network host debian:bookworm-slim true 2>&1) ||
  skip "podman cannot run a container here: $(printf '%s' "$why" | tail -n 1)"

# ---------------------------------------------------------------- image

echo "==> podman build -f container/Containerfile -t $IMAGE ."
build_started=$SECONDS
# --format docker: the OCI image format has no HEALTHCHECK.
if podman build "${PODMAN_RUN[@]}" --network host --format docker \
  -f container/Containerfile -t "$IMAGE" . >"${TMPDIR:-/tmp}/portcullis-image-build.log" 2>&1; then
  pass "image builds ($((SECONDS - build_started))s)"
else
  tail -n 40 "${TMPDIR:-/tmp}/portcullis-image-build.log"
  fail "image build (log: ${TMPDIR:-/tmp}/portcullis-image-build.log)"
  summary
  exit 1
fi
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "image size: $((size / 1024 / 1024)) MiB"

user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$user" = "10587:10587" ] && pass "image USER is $user" || fail "image USER is '$user'"
health=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
case $health in
  *portcullis*healthcheck*) pass "image has a HEALTHCHECK running portcullis healthcheck" ;;
  *) fail "image HEALTHCHECK: $health" ;;
esac
stopsignal=$(podman image inspect --format '{{.Config.StopSignal}}' "$IMAGE")
[ "$stopsignal" = "SIGTERM" ] && pass "STOPSIGNAL SIGTERM" || fail "STOPSIGNAL is '$stopsignal'"
if podman run --rm "${PODMAN_RUN[@]}" --entrypoint /bin/sh "$IMAGE" -c \
  'command -v g++ || command -v cc || command -v meson || ls /usr/include/uv.h' >/dev/null 2>&1; then
  fail "the run image contains build tools or headers"
else
  pass "the run image has no compiler and no headers"
fi

# ---------------------------------------------------------------- a gateway in front of a backend

work=$(mktemp -d /tmp/portcullis-container-test.XXXXXX)
name=portcullis-test-$$
backend_pid=
cleanup() {
  podman rm -f -t 0 "$name" >/dev/null 2>&1
  [ -n "$backend_pid" ] && kill "$backend_pid" 2>/dev/null && wait "$backend_pid" 2>/dev/null
  if [ -n "$KEEP" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

read -r port_starttls port_implicit port_backend < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
)

mkdir -p "$work/etc/tls" "$work/mail"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/etc/tls/privkey.pem" -out "$work/etc/tls/fullchain.pem" 2>/dev/null
cat >"$work/etc/portcullis.toml" <<EOF
[server]
hostname = "gateway.test"
workers = 1

[[listener]]
address = "127.0.0.1:$port_starttls"
tls = "starttls"

[[listener]]
address = "127.0.0.1:$port_implicit"
tls = "implicit"

[tls]
certificate = "tls/fullchain.pem"
private_key = "tls/privkey.pem"

[backend]
address = "127.0.0.1:$port_backend"

[auth]
users_file = "users.toml"
failure_delay = "100ms"

[log]
format = "json"
EOF
printf '# users of the container test\n' >"$work/etc/users.toml"
# The image's user owns the folder while `user add` writes it.
chown -R 10587:10587 "$work/etc"
chmod 600 "$work/etc/users.toml" "$work/etc/tls/privkey.pem"

password="container-$(openssl rand -hex 12)"
if printf '%s\n' "$password" | podman run --rm -i "${PODMAN_RUN[@]}" --network none \
  -v "$work/etc:/etc/portcullis" "$IMAGE" \
  user add alice@example.com --password-stdin --config /etc/portcullis/portcullis.toml \
  2> >(grep -v 'unable to get systemd connection' >&2); then
  pass "portcullis user add in the image"
else
  fail "portcullis user add in the image"
fi

# Then mounted the way Kubernetes mounts Secrets with defaultMode 0440 and fsGroup:
# owned by root, readable by the gateway's group only, read-only.
chown -R 0:10587 "$work/etc"
chmod 750 "$work/etc" "$work/etc/tls"
chmod 440 "$work/etc/users.toml" "$work/etc/tls/privkey.pem" "$work/etc/tls/fullchain.pem" \
  "$work/etc/portcullis.toml"

python3 tests/e2e/recording_backend.py --host 127.0.0.1 --port "$port_backend" \
  --dir "$work/mail" >"$work/backend.out" 2>"$work/backend.log" &
backend_pid=$!
for _ in $(seq 50); do
  grep -q READY "$work/backend.out" 2>/dev/null && break
  sleep 0.1
done

# Without systemd podman cannot schedule the HEALTHCHECK timer and says so on stderr;
# `podman healthcheck run` below runs the check itself.
if podman run -d --name "$name" "${PODMAN_RUN[@]}" --network host \
  -v "$work/etc:/etc/portcullis:ro" "$IMAGE" >/dev/null 2>"$work/podman-run.err"; then
  pass "gateway container starts"
else
  cat "$work/podman-run.err"
  fail "gateway container starts"
fi

healthy=
for _ in $(seq 50); do
  if podman healthcheck run "$name" >/dev/null 2>&1; then
    healthy=1
    break
  fi
  sleep 0.2
done
[ -n "$healthy" ] && pass "podman healthcheck run (the image's HEALTHCHECK)" ||
  fail "podman healthcheck run never passed"

uid_line=$(podman exec "$name" grep '^Uid:' /proc/1/status 2>&1)
read -r _ ruid euid _ <<<"$uid_line"
if [ "${ruid:-}" = 10587 ] && [ "${euid:-}" = 10587 ]; then
  pass "the gateway runs as uid 10587, not root"
else
  fail "the gateway's uid: $uid_line"
fi

# swaks ends the data with CRLF "." CRLF itself: the file has no final CRLF, and the
# message the backend records is the file plus that CRLF.
printf 'From: alice@example.com\r\nTo: bob@example.net\r\nSubject: through the container\r\nMessage-ID: <container-test-%s@example.com>\r\n\r\nFirst line.\r\n.leading dot stays\r\n\r\nLast line.' \
  "$$" >"$work/message.eml"
{ cat "$work/message.eml"; printf '\r\n'; } >"$work/expected.eml"
if swaks --server "127.0.0.1:$port_starttls" --tls --auth PLAIN \
  --auth-user alice@example.com --auth-password "$password" \
  --from alice@example.com --to bob@example.net --data @"$work/message.eml" \
  --timeout 30 >"$work/swaks.log" 2>&1; then
  pass "swaks: STARTTLS + AUTH PLAIN + message accepted"
else
  tail -n 20 "$work/swaks.log"
  fail "swaks through the gateway"
fi
if cmp -s "$work/expected.eml" "$work/mail/msg-1.eml"; then
  pass "the backend received the message byte for byte"
else
  fail "the backend's msg-1.eml differs from what was sent"
fi
if swaks --server "127.0.0.1:$port_starttls" --tls --auth PLAIN \
  --auth-user alice@example.com --auth-password "wrong-$password" \
  --from alice@example.com --to bob@example.net --timeout 30 >/dev/null 2>&1; then
  fail "a wrong password was accepted"
else
  pass "a wrong password is refused"
fi

stop_started=$(date +%s.%N)
podman stop -t "$STOP_LIMIT" "$name" >/dev/null 2>&1
stop_took=$(python3 -c "import time; print('%.2f' % (time.time() - $stop_started))")
code=$(podman inspect --format '{{.State.ExitCode}}' "$name" 2>&1)
if [ "$code" = 0 ] && python3 -c "import sys; sys.exit(0 if $stop_took < $STOP_LIMIT else 1)"; then
  pass "SIGTERM: exit code 0 after ${stop_took}s"
else
  fail "SIGTERM: exit code '$code' after ${stop_took}s (limit ${STOP_LIMIT}s)"
fi
logs=$(podman logs "$name" 2>&1)
if grep -q "$password" <<<"$logs"; then
  fail "the password appears in the gateway's log"
elif grep -qE '"event": ?"message"' <<<"$logs"; then
  pass "the gateway logged the message (JSON lines on stdout)"
else
  printf '%s\n' "$logs" | tail -n 20
  fail "no message event in the gateway's log"
fi

summary
