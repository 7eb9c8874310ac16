#!/usr/bin/env python3
"""Auth storm: does a password-guessing flood slow down a client that is sending mail?

Starts a gateway (and the e2e recording backend) with production Argon2id cost
(t=3, m=64 MiB), logs one good client in, then for each scenario runs N attackers in
a separate process (asyncio, one connection each, every one from its own address in
127.0.2.0/23) that send AUTH PLAIN with wrong passwords as fast as the gateway
answers, while the good client, on its already authenticated session, sends NOOP every
20 ms and a message every 25th round. Every 2 s a second good client logs in afresh
(from 127.0.0.1, the good client's address, outside the attackers' networks) to see
what a new login costs.

Scenarios:
  baseline     no attackers
  protected    the defaults: lockouts per address (10/10m), per user, per /24 (20 names/1h)
  unprotected  lockouts off (max_failures and spray_max_users "unlimited"): every attempt
               costs an Argon2id verification, so only the hashing cap (454) protects
  uncached     as unprotected, and cache_ttl "0s": every fresh good login needs Argon2id
               too and gets in through the quarter of the queue kept for known addresses

Prints the good client's NOOP round trip (p50/p90/p99/max), fresh-login AUTH round trip,
attacker attempts/s with their reply codes, and one JSON line per scenario. This is a
measurement, not a test: it asserts nothing about the numbers.

    bench/auth_storm.py --binary build/portcullis [--attackers 100] [--duration 20]
"""

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import harness  # noqa: E402

GOOD = "good@example.com"
WRONG = "Wrong-password-but-long-77"


def blob(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


# --------------------------------------------------------------------- attackers

async def attacker(i, port, stop_at, counts):
    source = "127.0.%d.%d" % (2 + i // 250, 1 + i % 250)
    user = "victim%d@example.com" % (i % 50)
    while time.monotonic() < stop_at:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0))
        except OSError:
            counts["connect_error"] = counts.get("connect_error", 0) + 1
            await asyncio.sleep(0.1)
            continue
        try:
            await reader.readline()  # greeting
            writer.write(b"EHLO attacker.test\r\n")
            while True:
                line = await reader.readline()
                if not line or line[3:4] == b" ":
                    break
            while time.monotonic() < stop_at:
                writer.write(("AUTH PLAIN %s\r\n" % blob(user, WRONG)).encode())
                await writer.drain()
                line = await reader.readline()
                if not line:
                    break
                code = line[:3].decode("ascii", "replace")
                counts[code] = counts.get(code, 0) + 1
                if code == "421":
                    break  # preauth deadline: connect again
        except (OSError, asyncio.IncompleteReadError):
            counts["reset"] = counts.get("reset", 0) + 1
        finally:
            writer.close()


def run_attackers(port, n, seconds, queue, nice):
    # Real attackers are elsewhere; on a small test machine their CPU use would
    # otherwise be measured as the gateway's.
    os.nice(nice)
    counts = {}

    async def main():
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(attacker(i, port, stop_at, counts) for i in range(n)))

    asyncio.run(main())
    queue.put(counts)


# ---------------------------------------------------------------------- the client

def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * (len(values) - 1)))))
    return values[k]


def summary_ms(values):
    return {"n": len(values),
            "p50": round(percentile(values, 50) * 1000, 3),
            "p90": round(percentile(values, 90) * 1000, 3),
            "p99": round(percentile(values, 99) * 1000, 3),
            "max": round(max(values) * 1000, 3) if values else float("nan")}


def good_client(fx, d, seconds):
    """NOOP round trips on the authenticated session `d`, with mail in between, plus a
    fresh login every 2 s. Returns (noop_rtts, login_rtts, messages, errors)."""
    noops, logins, errors = [], [], []
    messages = 0
    stop_at = time.monotonic() + seconds
    next_login = time.monotonic() + 1.0
    i = 0
    while time.monotonic() < stop_at:
        t0 = time.perf_counter()
        r = d.cmd("NOOP")
        noops.append(time.perf_counter() - t0)
        if r.code != 250:
            errors.append("NOOP: %r" % r)
        i += 1
        if i % 25 == 0:
            d.cmd("MAIL FROM:<%s>" % GOOD)
            d.cmd("RCPT TO:<someone@example.net>")
            r = d.cmd("DATA")
            if r.code == 354:
                d.send("From: %s\r\nSubject: storm %d\r\n\r\nhello\r\n.\r\n" % (GOOD, i))
                r = d.reply()
            if r.code == 250:
                messages += 1
            else:
                errors.append("message: %r" % r)
        if time.monotonic() >= next_login:
            next_login += 2.0
            c = fx.connect("none")
            c.ehlo()
            t0 = time.perf_counter()
            r = c.auth_plain(GOOD, harness.PASSWORD)
            logins.append(time.perf_counter() - t0)
            if r.code != 235:
                errors.append("fresh login: %r" % r)
            c.cmd("QUIT")
            c.close()
        time.sleep(0.02)
    d.cmd("QUIT")
    return noops, logins, messages, errors


def run_scenario(args, name, overrides):
    fx = harness.Fixture(args.binary)
    try:
        # production Argon2id cost for the stored hash and the dummy one
        fx.write_config({"auth": {"hash_iterations": 3, "hash_memory": "64MiB",
                                  "failure_delay": args.failure_delay},
                         "log": {"level": "info"}})
        fx.add_user(GOOD)
        fx.start(overrides)
        # the good client logs in before the storm and keeps its session
        d = fx.session("none", user=GOOD, password=harness.PASSWORD)
        queue = multiprocessing.Queue()
        proc = None
        if args.attackers > 0 and name != "baseline":
            proc = multiprocessing.Process(
                target=run_attackers,
                args=(fx.ports["none"], args.attackers, args.duration + 2, queue,
                      args.attacker_nice))
            proc.start()
            time.sleep(2)  # let the storm build up before measuring
        noops, logins, messages, errors = good_client(fx, d, args.duration)
        counts = {}
        if proc is not None:
            counts = queue.get(timeout=60)
            proc.join(timeout=30)
        attempts = sum(v for k, v in counts.items() if k.isdigit())
        result = {"scenario": name, "noop_ms": summary_ms(noops),
                  "fresh_login_ms": summary_ms(logins), "messages": messages,
                  "errors": errors[:5], "attacker_replies": counts,
                  "attacker_attempts_per_s": round(attempts / (args.duration + 2), 1),
                  "lockouts": len(fx.events("auth.lockout"))}
        return result
    finally:
        for problem in fx.teardown():
            print("  (teardown) " + problem.splitlines()[0], file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", default=os.path.join(ROOT, "build", "portcullis"))
    p.add_argument("--attackers", type=int, default=100)
    p.add_argument("--duration", type=float, default=20.0, help="seconds measured per scenario")
    p.add_argument("--failure-delay", default="2s", help="[auth] failure_delay")
    p.add_argument("--scenarios", default="baseline,protected,unprotected,uncached")
    p.add_argument("--attacker-nice", type=int, default=19,
                   help="nice value of the attacker process (0 to compete with the gateway)")
    args = p.parse_args()

    scenarios = {
        "baseline": {},
        "protected": {},
        "unprotected": {"auth": {"max_failures": "unlimited", "spray_max_users": "unlimited"}},
        "uncached": {"auth": {"max_failures": "unlimited", "spray_max_users": "unlimited",
                              "cache_ttl": "0s"}},
    }
    print("auth storm: %d attackers (nice %d), %.0f s per scenario, failure_delay %s, %s, "
          "%d CPUs" % (args.attackers, args.attacker_nice, args.duration, args.failure_delay,
                       platform.platform(), os.cpu_count()))
    results = []
    for name in args.scenarios.split(","):
        r = run_scenario(args, name, scenarios[name])
        results.append(r)
        n = r["noop_ms"]
        lg = r["fresh_login_ms"]
        print("%-12s NOOP ms p50 %7.3f  p90 %7.3f  p99 %7.3f  max %7.3f  (n=%d)  "
              "fresh AUTH ms p50 %7.1f max %7.1f  messages %d  attempts/s %.0f  replies %s  "
              "lockouts %d%s"
              % (name, n["p50"], n["p90"], n["p99"], n["max"], n["n"], lg["p50"], lg["max"],
                 r["messages"], r["attacker_attempts_per_s"],
                 json.dumps(r["attacker_replies"], sort_keys=True), r["lockouts"],
                 ("  ERRORS %s" % r["errors"]) if r["errors"] else ""))
    for r in results:
        print(json.dumps(r, sort_keys=True))


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    main()
