"""portcullis-bench (issue 7) against the real gateway and recording backend: every
message it reports was delivered, --resume resumes TLS sessions, --codec decodes
correctly. The bench is the one built next to the binary under test."""

import json
import os

from harness import PASSWORD, check

ALICE = "alice@example.com"


def _bench(fx):
    path = os.path.join(os.path.dirname(fx.binary), "src", "bench", "portcullis-bench")
    check(os.access(path, os.X_OK), "no portcullis-bench at %s" % path)
    return path


def _run(fx, *args):
    p = fx.run_tool([_bench(fx), "--json", *args], timeout=60)
    check(p.stdout.strip(), "portcullis-bench printed nothing: %s" % p.stderr)
    return p.returncode, json.loads(p.stdout)


def test_bench_messages_reach_the_backend_and_sessions_resume(fx):
    fx.add_user(ALICE)
    fx.start()
    password_file = os.path.join(fx.dir, "bench-password")
    with open(password_file, "w") as f:
        f.write(PASSWORD + "\n")
    rc, r = _run(fx, "--target", "127.0.0.1:%d" % fx.port_implicit, "--mode", "implicit",
                 "--user", ALICE, "--password-file", password_file, "--clients", "2",
                 "--messages-per-connection", "3", "--size", "2KiB", "--duration", "1.5",
                 "--warmup", "0", "--resume")
    check(rc == 0 and r["failures"] == 0, "bench failed (%d): %r" % (rc, r.get("failure_reasons")))
    check(r["messages"] >= 6, "only %d messages in the window" % r["messages"])
    # every connection after a client's first offered its ticket and resumed
    check(r["tls_handshakes"] >= 4 and r["tls_resumed"] >= r["tls_handshakes"] - 2,
          "resumed %d of %d handshakes" % (r["tls_resumed"], r["tls_handshakes"]))
    # every message is either the first of its session or a later one; with 3 messages
    # per connection about one in three is a first
    first, later = r["first_latency_ms"]["count"], r["later_latency_ms"]["count"]
    check(first + later == r["latency_ms"]["count"] and 0 < first <= later,
          "first %d + later %d of %d messages" % (first, later, r["latency_ms"]["count"]))
    # the server's part of each message (until the reply reached the bench's socket,
    # kernel receive timestamps) is never more than what the bench saw, message by
    # message, so every percentile is at most the bench's own
    sock, seen = r["socket_latency_ms"], r["latency_ms"]
    check(sock["count"] == seen["count"] and
          all(0 < sock[q] <= seen[q] for q in ("p50", "p90", "p99", "max")),
          "socket latency %r against %r" % (sock, seen))
    check(r["reads"] > 0 and r["stamped_reads"] >= 0.9 * r["reads"],
          "%d of %d reads carried a kernel timestamp" % (r["stamped_reads"], r["reads"]))
    # every connection that reached its first message reported its set-up time
    setup = r["setup_latency_ms"]
    check(setup["count"] >= 2 and 0 < setup["p50"] <= setup["p99"] <= setup["max"],
          "set-up latency: %r" % setup)
    # the bench times its own loop: turns were counted, and the time spent in long
    # turns is part of the window
    loop = r["bench_loop"]
    check(loop["turns"] > 0 and 0 < loop["turn_p99_ms"] <= loop["turn_max_ms"],
          "bench loop turns: %r" % loop)
    check(0 <= loop["long_turns_share"] < 1, "bench loop: %r" % loop)
    tls = fx.events("tls")
    check(sum(1 for e in tls if e.get("resumed")) >= r["tls_resumed"],
          "the gateway logged fewer resumptions than the bench saw")
    delivered = fx.messages()
    check(len(delivered) >= r["messages"], "backend got %d messages, bench counted %d"
          % (len(delivered), r["messages"]))
    check(all(len(m) == 2048 for m in delivered.values()),
          "message sizes at the backend: %r" % sorted({len(m) for m in delivered.values()}))


def test_bench_codec_mode(fx):
    rc, r = _run(fx, "--codec", "--size", "256KiB", "--codec-chunk", "10000", "--duration", "0.4")
    check(rc == 0, "codec mode exited %d: %r" % (rc, r))
    for caller in ("feed", "pass"):
        check(r[caller]["correct"] and r[caller]["messages"] > 0 and r[caller]["ms_per_mb"] > 0,
              "%s: %r" % (caller, r[caller]))
