"""[state] backend = "redis": rate limits and lockouts shared by two gateway processes
through a private redis-server, and what happens when Redis goes away (issue 8).

Each test starts its own redis-server on a free loopback port (no persistence) and two
gateways with their own ports and logs, sharing the users file and the recording
backend, the way replicas behind a load balancer share a Redis.
"""

import os
import re
import smtplib
import time

import yaml

from harness import PASSWORD, PASSWORD_2, check, free_ports
from redis_server import RedisServer
from test_abuse import ALICE, BOB, WRONG, add_user_lines, auth_once, body

HERE = os.path.dirname(os.path.abspath(__file__))


def start_redis(fx):
    redis = RedisServer(fx.dir).start()
    fx.closers.append(redis.stop)
    return redis


def state(redis, **extra):
    # A generous deadline: the shared-count tests must not fall back because a
    # sanitizer build on a busy machine took 60 ms for a round trip.
    cfg = {"backend": "redis", "address": redis.address, "timeout": "1s"}
    cfg.update(extra)
    return cfg


def two_gateways(fx, overrides):
    fx.start(overrides)
    gw2 = fx.second_gateway()
    gw2.start(overrides, backend=False)
    return fx, gw2


def state_metrics(fx, port):
    """The [state] metrics of a gateway's /metrics, read with curl."""
    p = fx.run_tool(["curl", "-sS", "--max-time", "10", "http://127.0.0.1:%d/metrics" % port])
    check(p.returncode == 0, "curl /metrics failed: %s" % p.stderr)
    values = {}
    for line in p.stdout.splitlines():
        for name, key in (("portcullis_state_available ", "available"),
                          ("portcullis_state_outages_total ", "outages"),
                          ('portcullis_state_fallbacks_total{outcome="refused"} ', "refused")):
            if line.startswith(name):
                values[key] = int(float(line[len(name):]))
    check(len(values) == 3, "state metrics missing from /metrics: %r" % values)
    return values


def send_one(gw, subject, user=ALICE, password=PASSWORD):
    """One message through `gw` on a fresh connection; returns None or the refusal."""
    c = gw.smtp("none", login=(user, password))
    try:
        c.sendmail(user, ["r@example.net"], body(300, subject, sender=user))
        return None
    except smtplib.SMTPSenderRefused as e:
        return e
    finally:
        try:
            c.quit()
        except smtplib.SMTPException:
            pass


def expect_rate_refusal(refusal, low, high):
    """The memory version's reply: 450 4.7.1 with the limit and an exact retry hint."""
    check(refusal is not None, "the message over the limit was accepted")
    check(refusal.smtp_code == 450, "expected 450, got %r" % (refusal,))
    text = refusal.smtp_error.decode()
    m = re.fullmatch(r"4\.7\.1 Rate limit exceeded \(messages\), try again in (\d+)s", text)
    check(m, "reply differs from the memory version's: %r" % text)
    check(low <= int(m.group(1)) <= high, "odd retry hint %r" % text)


def test_redis_rate_limit_shared_by_two_gateways(fx):
    redis = start_redis(fx)
    fx.add_user(ALICE)
    add_user_lines(fx, ALICE, ['rate_limits = { messages = "3/1h" }'])
    gw1, gw2 = two_gateways(fx, {"state": state(redis)})
    check(send_one(gw1, "one") is None, "first message via gateway 1 refused")
    check(send_one(gw1, "two") is None, "second message via gateway 1 refused")
    check(send_one(gw2, "three") is None, "third message via gateway 2 refused")
    # one message every 1200 s: the hint is the exact wait, as in the memory version
    expect_rate_refusal(send_one(gw2, "four"), 1190, 1200)
    fx.wait_for(lambda: len(fx.messages()) == 3, 5, "backend did not get 3 messages")
    check(b"four" not in fx.backend_raw(), "the refused message reached the backend")
    # gateway 1 refuses too: the bucket is the same one
    expect_rate_refusal(send_one(gw1, "five"), 1190, 1200)
    # the bucket is in Redis under the prefix, and expires on its own
    keys = redis.command("KEYS", "portcullis:rate:messages:*")
    check(len(keys) == 1, "rate keys in Redis: %r" % keys)
    ttl = redis.command("PTTL", keys[0])
    check(0 < ttl <= 3600 * 1000 + 1000, "bucket TTL %r ms" % ttl)
    check(ALICE not in " ".join(keys), "a user name appears in a key: %r" % keys)
    for gw in (gw1, gw2):
        check(not gw.events("state.unavailable"), "Redis was reported unavailable")


def test_redis_lockout_holds_on_other_gateway(fx):
    redis = start_redis(fx)
    fx.add_user(ALICE)
    fx.add_user(BOB, PASSWORD_2)
    overrides = {"state": state(redis), "auth": {"max_failures": "3/10m", "lockout": "1h"}}
    gw1, gw2 = two_gateways(fx, overrides)
    src = "127.0.0.81"
    wrong = fx.secret(WRONG)
    replies = [auth_once(gw1, "x%d@example.com" % i, wrong, source=src)[0] for i in range(3)]
    for r in replies:
        r.expect(535, "5.7.8")
    # the right password through the other gateway: the same 535 after the same delay
    t0 = time.monotonic()
    r, _ = auth_once(gw2, BOB, PASSWORD_2, source=src)
    check(time.monotonic() - t0 >= 0.18, "a locked attempt was answered before failure_delay")
    check(repr(r) == repr(replies[0]), "locked reply %r differs from %r" % (r, replies[0]))
    auth_once(gw2, BOB, PASSWORD_2, source="127.0.0.82")[0].expect(235)  # others are fine
    events = gw1.events("auth.lockout")
    check(len(events) == 1 and events[0]["scope"] == "address" and events[0]["key"] == src,
          "lockout events on gateway 1: %r" % events)
    check(not gw2.events("auth.lockout"), "gateway 2 logged the lockout again")
    locked = [e for e in gw2.events("auth") if "locked out (address)" in e.get("reason", "")]
    check(len(locked) == 1, "gateway 2 did not refuse for the address lockout: %r"
          % gw2.events("auth"))
    # per user: three wrong passwords for alice from three addresses through gateway 2
    for i, src in enumerate(("127.0.0.83", "127.0.0.84", "127.0.0.85")):
        auth_once(gw2 if i % 2 else gw1, ALICE, wrong, source=src)[0].expect(535, "5.7.8")
    auth_once(gw1, ALICE, PASSWORD, source="127.0.0.86")[0].expect(535, "5.7.8")
    auth_once(gw2, ALICE, PASSWORD, source="127.0.0.87")[0].expect(535, "5.7.8")
    scopes = sorted(e["scope"] for gw in (gw1, gw2) for e in gw.events("auth.lockout"))
    check(scopes == ["address", "user"], "lockouts logged: %r" % scopes)
    check(redis.command("PTTL", "portcullis:lock:addr:127.0.0.81") > 0, "lockout key has no TTL")


def test_redis_outage_falls_back_to_local_limits(fx):
    redis = start_redis(fx)
    fx.add_user(ALICE)
    add_user_lines(fx, ALICE, ['rate_limits = { messages = "3/1h" }'])
    gw1, gw2 = two_gateways(fx, {"state": state(redis, on_state_error="local")})
    check(send_one(gw1, "shared 1") is None, "first message refused")
    check(send_one(gw2, "shared 2") is None, "second message refused")
    redis.stop()
    # local limits now: gateway 1's own bucket is full (3), whatever Redis had counted
    for i in range(3):
        t0 = time.monotonic()
        check(send_one(gw1, "local %d" % i) is None, "local message %d refused" % i)
        check(time.monotonic() - t0 < 5, "a session waited on the stopped Redis")
    expect_rate_refusal(send_one(gw1, "local over"), 1190, 1200)
    gw1.wait_event("state.unavailable")
    check(len(gw1.events("state.unavailable")) == 1,
          "outage logged more than once: %r" % gw1.events("state.unavailable"))
    # AUTH and lockouts keep working locally as well
    auth_once(gw2, ALICE, fx.secret(WRONG), source="127.0.0.91")[0].expect(535, "5.7.8")
    auth_once(gw2, ALICE, PASSWORD, source="127.0.0.91")[0].expect(235)
    # Redis back (empty: it keeps nothing on disk): shared limits again, not local ones
    redis.start()
    for gw in (gw1, gw2):
        gw.wait_event("state.restored", timeout=15)
    # every worker's connection is back after at most one reconnect interval (<= 5 s)
    time.sleep(5.5)
    check(send_one(gw1, "again 1") is None, "message after restart refused")
    check(send_one(gw2, "again 2") is None, "message after restart refused")
    check(send_one(gw2, "again 3") is None, "message after restart refused")
    expect_rate_refusal(send_one(gw2, "again 4"), 1190, 1200)
    check(redis.command("KEYS", "portcullis:rate:*"), "no bucket in Redis after the restart")
    check(not [e for gw in (gw1, gw2) for e in gw.events("state.refused")],
          "local mode refused an operation")


def test_redis_outage_fail_closed(fx):
    redis = start_redis(fx)
    fx.add_user(ALICE)
    add_user_lines(fx, ALICE, ['rate_limits = { messages = "100/1h" }'])
    shared = {"state": state(redis, on_state_error="fail-closed", timeout="300ms")}
    (metrics_port,) = free_ports(1)
    fx.start(dict(shared, metrics={"address": "127.0.0.1:%d" % metrics_port}))
    gw1 = fx
    gw2 = fx.second_gateway()
    gw2.start(shared, backend=False)
    check(state_metrics(fx, metrics_port) == {"available": 1, "outages": 0, "refused": 0},
          "state metrics before the outage: %r" % state_metrics(fx, metrics_port))
    c = gw1.smtp("none", login=(ALICE, PASSWORD))  # authenticated before the outage
    c.sendmail(ALICE, ["r@example.net"], body(300, "before"))
    # a Redis that hangs (SIGSTOP): each call waits for the deadline, then 451
    redis.pause()
    t0 = time.monotonic()
    code, text = c.docmd("MAIL FROM:<%s>" % ALICE)
    waited = time.monotonic() - t0
    check(code == 451 and text.decode().startswith("4.3.0"), "MAIL got %d %r" % (code, text))
    check(0.25 <= waited < 3, "MAIL answered after %.2fs (deadline 300ms)" % waited)
    # a Redis that is gone: refused at once, AUTH included
    redis.resume()
    redis.stop()
    code, text = c.docmd("MAIL FROM:<%s>" % ALICE)
    check(code == 451 and text.decode().startswith("4.3.0"), "MAIL got %d %r" % (code, text))
    r, _ = auth_once(gw2, ALICE, PASSWORD)
    r.expect(451, "4.3.0")
    for gw in (gw1, gw2):
        check(gw.gateway.poll() is None, "a gateway died during the outage")
    during = state_metrics(fx, metrics_port)
    check(during["available"] == 0 and during["outages"] >= 1 and during["refused"] >= 2,
          "state metrics during the outage: %r" % during)
    # back to normal once Redis answers again
    redis.start()
    gw1.wait_event("state.restored", timeout=15)
    time.sleep(5.5)  # every worker's connection is back within one reconnect interval
    code, text = c.docmd("MAIL FROM:<%s>" % ALICE)
    check(code == 250, "MAIL after Redis came back got %d %r" % (code, text))
    c.docmd("RSET")
    auth_once(gw2, ALICE, PASSWORD)[0].expect(235)


def test_redis_config_errors(fx):
    fx.write_config({"state": {"backend": "redis"}})
    p = fx.cli("check-config", "--config", fx.cfg)
    check(p.returncode != 0, "[state] without address accepted")
    check(re.search(r"portcullis\.toml:\d+:\d+: .*state\.address", p.stderr + p.stdout),
          "no file:line for the missing address: %s%s" % (p.stdout, p.stderr))
    fx.write_config({"state": {"backend": "redis", "address": "redis://127.0.0.1:6379",
                               "tls": True}})
    p = fx.cli("check-config", "--config", fx.cfg)
    check(p.returncode != 0 and "hiredis 0.14 has no TLS" in p.stdout + p.stderr,
          "tls = true not refused with the reason: %s%s" % (p.stdout, p.stderr))
    # a password file others can read is refused like the other secrets
    secret = os.path.join(fx.dir, "redis.pass")
    with open(secret, "w") as f:
        f.write("s3cret-redis-pass\n")
    os.chmod(secret, 0o644)
    fx.config["state"] = {"backend": "redis", "address": "redis://127.0.0.1:6379",
                          "password_file": "redis.pass"}
    fx.write_config()
    p = fx.cli("check-config", "--config", fx.cfg)
    check(p.returncode != 0 and "redis.pass" in p.stdout + p.stderr
          and "chmod 600" in p.stdout + p.stderr,
          "world-readable Redis password file accepted: %s%s" % (p.stdout, p.stderr))


def test_redis_password_file(fx):
    redis = start_redis(fx)
    redis.command("CONFIG", "SET", "requirepass", "s3cret-redis-pass")
    secret = os.path.join(fx.dir, "redis.pass")
    with open(secret, "w") as f:
        f.write("s3cret-redis-pass\n")
    os.chmod(secret, 0o600)
    fx.secret("s3cret-redis-pass")
    fx.add_user(ALICE)
    add_user_lines(fx, ALICE, ['rate_limits = { messages = "1/1h" }'])
    fx.start({"state": state(redis, password_file="redis.pass", on_state_error="fail-closed")})
    check(send_one(fx, "one") is None, "first message refused")
    expect_rate_refusal(send_one(fx, "two"), 3590, 3600)
    check(not fx.events("state.unavailable"), "AUTH to Redis failed: %r"
          % fx.events("state.unavailable"))


def test_k8s_redis_replicas_manifest_parses(fx):
    path = os.path.join(HERE, "..", "..", "container", "k8s", "redis-replicas.yaml")
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    kinds = {}
    for d in docs:
        check("apiVersion" in d and "kind" in d and d.get("metadata", {}).get("name"),
              "document without apiVersion/kind/name: %r" % d)
        kinds.setdefault(d["kind"], []).append(d)
    deployments = {d["metadata"]["name"]: d for d in kinds.get("Deployment", [])}
    check("portcullis" in deployments, "no portcullis Deployment: %r" % list(deployments))
    check(deployments["portcullis"]["spec"]["replicas"] == 3, "gateway replicas != 3")
    check({"portcullis-redis", "portcullis-haproxy"} <= set(deployments),
          "deployments: %r" % list(deployments))
    check(len(kinds.get("Service", [])) >= 3, "expected services for gateway, redis, haproxy")
    maps = {d["metadata"]["name"]: d for d in kinds.get("ConfigMap", [])}
    gateway_toml = maps["portcullis-config"]["data"]["portcullis.toml"]
    haproxy_cfg = maps["portcullis-haproxy"]["data"]["haproxy.cfg"]
    check('backend = "redis"' in gateway_toml and "proxy_protocol = true" in gateway_toml,
          "the gateway config does not use Redis state and PROXY listeners")
    check(haproxy_cfg.count("send-proxy-v2") == 2, "HAProxy does not send PROXY v2 to both")
    # the embedded gateway config passes the real binary's check-config, with the
    # mounted files replaced by the fixture's
    password = os.path.join(fx.dir, "redis-password")
    with open(password, "w") as f:
        f.write("x" * 32 + "\n")
    os.chmod(password, 0o600)
    fx.add_user(ALICE)
    text = (gateway_toml
            .replace("/etc/portcullis/tls/fullchain.pem", fx.ecdsa_cert)
            .replace("/etc/portcullis/tls/privkey.pem", fx.ecdsa_key)
            .replace("/etc/portcullis/users/users.toml", fx.users_file)
            .replace("/etc/portcullis/redis/password", password))
    path = os.path.join(fx.dir, "k8s.toml")
    with open(path, "w") as f:
        f.write(text)
    p = fx.cli("check-config", "--config", path)
    check(p.returncode == 0, "check-config of the k8s config: %s%s" % (p.stdout, p.stderr))


def test_redis_bytes_limit_delivers_the_whole_message(fx):
    # The bytes limit is taken at the end of data, with a Redis round trip between the
    # last chunk and the end-of-data line: the chunk must still reach the backend whole.
    redis = start_redis(fx)
    fx.add_user(ALICE)
    add_user_lines(fx, ALICE, ['rate_limits = { bytes = "10MiB/1h" }'])
    fx.start({"state": state(redis)})
    message = body(3000, "whole")
    c = fx.smtp("none", login=(ALICE, PASSWORD))
    c.sendmail(ALICE, ["r@example.net"], message)
    c.quit()
    got = fx.message(1)
    check(got == message.encode(), "backend got %d bytes, sent %d: %r" %
          (len(got), len(message), got[-200:]))
    keys = redis.command("KEYS", "portcullis:rate:bytes:*")
    check(len(keys) == 1, "bytes bucket not in Redis: %r" % keys)
    check(not fx.events("state.unavailable"), "Redis was reported unavailable")
