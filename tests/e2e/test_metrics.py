"""[metrics]: Prometheus text at /metrics (checked with promtool), /healthz, /readyz, and
the strict little HTTP server behind them."""

import re
import shutil
import signal
import smtplib
import socket
import subprocess

from harness import PASSWORD, Failure, check, free_ports

ALICE = "alice@example.com"
NOBODY = "someone@example.net"


def _start(fx, **extra):
    (port,) = free_ports(1)
    fx.metrics_port = port
    overrides = {"metrics": {"address": "127.0.0.1:%d" % port}}
    overrides.update(extra)
    fx.start(overrides)
    return port


def _curl(fx, path, *args):
    """(status, body) of a GET with curl."""
    p = fx.run_tool(["curl", "-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}",
                     *args, "http://127.0.0.1:%d%s" % (fx.metrics_port, path)])
    check(p.returncode == 0, "curl %s failed: %s" % (path, p.stderr))
    body, _, status = p.stdout.rpartition("\n")
    return int(status), body


def _samples(text):
    """{'name{labels}': value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


def _metrics(fx):
    status, body = _curl(fx, "/metrics")
    check(status == 200, "/metrics answered %d: %s" % (status, body[:300]))
    return body, _samples(body)


def _restart_backend(fx, *args):
    fx.backend.send_signal(signal.SIGTERM)
    fx.backend.wait(timeout=5)
    fx.backend.stdout.close()
    fx.start_backend(args)


def _send(fx, expect_code):
    c = fx.smtp("starttls", login=(ALICE, PASSWORD))
    try:
        c.sendmail(ALICE, [NOBODY], b"Subject: metrics\r\n\r\nhello\r\n")
        code = 250
    except smtplib.SMTPDataError as e:
        code = e.smtp_code
    check(code == expect_code, "end of data answered %d, expected %d" % (code, expect_code))
    c.quit()


def test_metrics_values_and_promtool(fx):
    check(shutil.which("promtool"), "promtool is not installed (Debian package prometheus)")
    fx.add_user(ALICE)
    _start(fx)
    listener = "127.0.0.1:%d" % fx.port_starttls

    _send(fx, 250)
    _restart_backend(fx, "--data-reply", "451 4.3.0 Try again later")
    _send(fx, 451)
    _restart_backend(fx, "--data-reply", "554 5.7.1 Rejected as spam")
    _send(fx, 554)
    d = fx.connect("implicit")
    d.ehlo()
    d.auth_plain(ALICE, fx.secret("Wrong-horse-battery-99")).expect(535)
    d.auth_plain(ALICE, PASSWORD).expect(235)
    d.cmd("MAIL FROM:<mallory@evil.test>").expect(553)
    d.cmd("QUIT").expect(221)
    fx.wait_for(lambda: len(fx.events("disconnect")) >= len(fx.events("connect")), 5,
                "sessions did not end")

    body, m = _metrics(fx)
    expected = {
        'portcullis_messages_total{result="accepted"}': 1,
        'portcullis_messages_total{result="temporary_failure"}': 1,
        'portcullis_messages_total{result="permanent_failure"}': 1,
        'portcullis_auth_attempts_total{mechanism="PLAIN",result="failure"}': 1,
        'portcullis_auth_attempts_total{mechanism="PLAIN",result="success"}': 4,
        'portcullis_auth_attempts_total{mechanism="PLAIN",result="locked_out"}': 0,
        'portcullis_auth_attempts_total{mechanism="LOGIN",result="success"}': 0,
        'portcullis_sender_rejections_total{check="envelope"}': 1,
        'portcullis_rate_limit_rejections_total{limit="messages"}': 0,
        'portcullis_backend_end_of_data_seconds_count': 3,
        'portcullis_tls_handshake_failures_total': 0,
        'portcullis_draining': 0,
        'portcullis_backends_up': 1,
        'portcullis_connections_current': 0,
    }
    for key, value in expected.items():
        check(m.get(key) == value, "%s = %r, expected %r" % (key, m.get(key), value))
    # The harness's start-up probes connect too: at least the sessions above.
    check(m.get('portcullis_connections_total{listener="%s"}' % listener, 0) >= 3,
          "connections_total for %s: %r" % (listener, m))
    check(m.get('portcullis_tls_handshakes_total{version="TLSv1.3"}', 0) >= 4,
          "TLS handshakes: %r" % {k: v for k, v in m.items() if "tls" in k})
    size = len(fx.message(1))
    check(m.get("portcullis_relayed_bytes_total", 0) >= size > 0,
          "relayed bytes %r, message of %d bytes" % (m.get("portcullis_relayed_bytes_total"),
                                                      size))
    check(m.get('portcullis_backend_end_of_data_seconds_bucket{le="+Inf"}') == 3,
          "histogram +Inf bucket: %r" % m)
    for name in ("portcullis_backend_connect_failures_total",
                 "portcullis_auth_lockouts_total", "portcullis_connections_refused_total"):
        check(name in m, "%s missing" % name)
    check("# TYPE portcullis_backend_end_of_data_seconds histogram" in body, body[:500])
    # Every worker's loop turns are timed: one histogram per worker, each turn falls in
    # +Inf, and none of the few sessions above kept a loop busy for a whole second. Which
    # worker the kernel hands a connection (SO_REUSEPORT) is its choice, and a worker that
    # got none sleeps in its poll without a single turn, so only the sum must be > 0.
    check("# TYPE portcullis_loop_turn_seconds histogram" in body, body[:500])
    turns = {k: v for k, v in m.items() if k.startswith("portcullis_loop_turn_seconds")}
    workers = sorted({k.split('worker="')[1].split('"')[0] for k in turns})
    check(workers == [str(w) for w in range(fx.config["server"]["workers"])],
          "loop turn histograms for workers %r, config has %r" %
          (workers, fx.config["server"]["workers"]))
    total = 0
    for w in workers:
        count = turns.get('portcullis_loop_turn_seconds_count{worker="%s"}' % w, 0)
        total += count
        check(turns.get('portcullis_loop_turn_seconds_bucket{worker="%s",le="+Inf"}' % w) == count,
              "worker %s: +Inf bucket differs from the count: %r" % (w, turns))
        check(turns.get('portcullis_loop_turn_seconds_bucket{worker="%s",le="1"}' % w) == count,
              "worker %s had a loop turn over 1 s: %r" % (w, turns))
    check(total > 0, "no worker counted a loop turn: %r" % turns)

    p = fx.run_tool(["promtool", "check", "metrics"], stdin=body)
    check(p.returncode == 0, "promtool check metrics: %s%s" % (p.stdout, p.stderr))

    # A reload keeps every value.
    fx.reload()
    _, after = _metrics(fx)
    check(after.get('portcullis_messages_total{result="accepted"}') == 1,
          "reload lost the counters: %r" % after)


def test_metrics_count_backend_connect_failures(fx):
    fx.add_user(ALICE)
    del fx.config["backend"]["address"]  # replaced by addresses
    _start(fx, backend={"addresses": ["127.0.0.1:%d" % fx.closed_port,
                                      "127.0.0.1:%d" % fx.backend_port]})
    _send(fx, 250)
    _, m = _metrics(fx)
    check(m.get("portcullis_backend_connect_failures_total", 0) >= 1,
          "connect failures: %r" % m.get("portcullis_backend_connect_failures_total"))
    check(m.get("portcullis_backends_up") == 1, "backends_up: %r" % m.get("portcullis_backends_up"))


def test_healthz_and_readyz(fx):
    fx.add_user(ALICE)
    _start(fx, backend={"probe_interval": "300ms"})
    check(_curl(fx, "/healthz") == (200, "ok\n"), "healthz: %r" % (_curl(fx, "/healthz"),))
    status, body = _curl(fx, "/readyz")
    check(status == 200 and body.startswith("ready"), "readyz: %d %r" % (status, body))

    fx.backend.send_signal(signal.SIGTERM)
    fx.backend.wait(timeout=5)
    fx.backend.stdout.close()
    fx.wait_for(lambda: _curl(fx, "/readyz")[0] == 503, 5, "readyz stayed 200 without backend")
    status, body = _curl(fx, "/readyz")
    check("no backend answered" in body, "readyz 503 body: %r" % body)
    check(_curl(fx, "/healthz")[0] == 200, "healthz must stay 200 while the backend is down")
    _, m = _metrics(fx)
    check(m.get("portcullis_backends_up") == 0, "backends_up: %r" % m.get("portcullis_backends_up"))

    fx.start_backend()
    fx.wait_for(lambda: _curl(fx, "/readyz")[0] == 200, 5, "readyz did not recover")


def _raw_http(port, data, wait=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def test_metrics_http_is_strict(fx):
    _start(fx)
    port = fx.metrics_port
    check(_curl(fx, "/nope")[0] == 404, "unknown path")
    check(_curl(fx, "/metrics", "-X", "POST", "-d", "x=1")[0] in (400, 405), "POST accepted")
    out = _raw_http(port, b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 405 ") and b"Allow: GET\r\n" in out, "DELETE: %r" % out[:200])
    out = _raw_http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X: " + b"a" * 9000)
    check(out.startswith(b"HTTP/1.1 431 "), "oversized request: %r" % out[:200])
    out = _raw_http(port, b"GARBAGE\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 400 "), "garbage: %r" % out[:200])
    out = _raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 200 ") and b"Connection: close\r\n" in out
          and out.endswith(b"\r\n\r\nok\n"), "healthz raw: %r" % out)
    # A client that never finishes its request is answered 408 and closed.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /metrics HTTP/1.1\r\n")
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    check(out.startswith(b"HTTP/1.1 408 "), "slow request: %r" % out[:200])
    # The gateway still serves mail and metrics.
    check(_curl(fx, "/healthz")[0] == 200, "healthz after abuse")


def test_metrics_bad_address_refuses_start(fx):
    fx.write_config({"metrics": {"address": "localhost:9587"}})
    p = fx.cli("check-config", "--config", fx.cfg)
    check(p.returncode == 1, "check-config accepted a host name: %s" % p.stdout)
    check(re.search(r"portcullis\.toml:\d+:\d+: metrics\.address: invalid address", p.stderr),
          "error does not name file:line:col: %r" % p.stderr)
    # A port that is taken: serve names it and exits 1.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        fx.write_config({"metrics": {"address": "127.0.0.1:%d" % blocker.getsockname()[1]}})
        try:
            p = subprocess.run([fx.binary, "serve", "--config", fx.cfg], capture_output=True,
                               text=True, timeout=20, cwd=fx.dir)
        except subprocess.TimeoutExpired:
            raise Failure("serve kept running with its metrics port taken")
    finally:
        blocker.close()
    check(p.returncode == 1, "serve exited %d with its metrics port taken" % p.returncode)
    check("[metrics] address" in p.stderr and "bind" in p.stderr, "stderr: %r" % p.stderr)


def test_metrics_port_is_not_shared_with_another_gateway(fx):
    # SMTP listeners share their port among one process's workers (SO_REUSEPORT); the
    # metrics port must not be shared, or a second gateway started by mistake with the
    # same address would silently answer half of the scrapes.
    port = _start(fx)
    other = fx.second_gateway()
    other.write_config({"metrics": {"address": "127.0.0.1:%d" % port}})
    p = other.serve_expecting_refusal("a metrics port already in use")
    check(p.returncode == 1, "second gateway exited %d" % p.returncode)
    check("[metrics] address" in p.stderr and "Address already in use" in p.stderr,
          "stderr: %r" % p.stderr)
    check(_curl(fx, "/healthz")[0] == 200, "the first gateway stopped answering")
