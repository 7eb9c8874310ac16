"""Several backends: failover on a connect failure or a 4xx greeting, and unhealthy
backends skipped for [backend] unhealthy_time."""

import os
import time

from harness import check, free_ports
from test_capabilities import extra_backend

ALICE = "alice@example.com"


def _deliver(fx, subject):
    d = fx.session("none")
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("RCPT TO:<someone@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: %s\r\n\r\nbody\r\n.\r\n" % subject)
    r = d.reply()
    d.cmd("QUIT").expect(221)
    return r


def _messages_in(folder):
    if not os.path.isdir(folder):
        return []
    return sorted(f for f in os.listdir(folder) if f.startswith("msg-") and f.endswith(".eml"))


def test_failover_on_connect_failure(fx):
    fx.add_user(ALICE)
    down = "127.0.0.1:%d" % fx.closed_port
    up = "127.0.0.1:%d" % fx.backend_port
    fx.start({"backend": {"address": None, "addresses": [down, up], "unhealthy_time": "0s"}})
    _deliver(fx, "one").expect(250, "2.0.0", "QID1")
    ev = fx.wait_event("backend.failover")
    check(ev[0]["backend"] == down and ev[0]["next"] == up and "connect" in ev[0]["reason"],
          "backend.failover: %r" % ev)
    check(fx.message(1).endswith(b"body\r\n"), "message: %r" % fx.message(1))


def test_failover_on_a_4xx_greeting(fx):
    fx.add_user(ALICE)
    busy_port, busy_dir = extra_backend(fx, "--greeting", "421 4.3.2 Too busy, try later")
    busy = "127.0.0.1:%d" % busy_port
    fx.start({"backend": {"address": None, "unhealthy_time": "0s",
                          "addresses": [busy, "127.0.0.1:%d" % fx.backend_port]}})
    _deliver(fx, "two").expect(250, "2.0.0", "QID1")
    ev = fx.wait_event("backend.failover", lambda e: e["backend"] == busy)
    check("greeting was 421" in ev[0]["reason"], "reason: %r" % ev)
    check(_messages_in(busy_dir) == [], "the busy backend stored a message")
    fx.message(1)


def test_unhealthy_backend_is_skipped(fx):
    fx.add_user(ALICE)
    down = "127.0.0.1:%d" % fx.closed_port
    fx.start({"backend": {"address": None, "unhealthy_time": "1h",
                          "addresses": [down, "127.0.0.1:%d" % fx.backend_port]}})
    probe = fx.wait_event("backend.probe", lambda e: e["backend"] == down)
    check(probe[0]["result"] == "failed" and probe[0]["healthy"] is False, "probe: %r" % probe)
    for subject in ("a", "b", "c"):
        _deliver(fx, subject).expect(250)
    check(fx.events("backend.failover") == [],
          "sessions still tried the unhealthy backend: %r" % fx.events("backend.failover"))
    check(len(fx.messages()) == 3, "messages: %r" % sorted(fx.messages()))


def test_unhealthy_backend_is_tried_again_after_unhealthy_time(fx):
    fx.add_user(ALICE)
    first_port = free_ports(1)[0]
    first = "127.0.0.1:%d" % first_port
    fx.start({"backend": {"address": None, "unhealthy_time": "1s", "probe_interval": "1h",
                          "addresses": [first, "127.0.0.1:%d" % fx.backend_port]}})
    fx.wait_event("backend.probe", lambda e: e["backend"] == first and e["result"] == "failed")
    _deliver(fx, "while down").expect(250)
    check(len(fx.messages()) == 1, "the second backend should have taken the first message")
    # The first backend comes back; once unhealthy_time is over it is first again.
    _, folder = extra_backend(fx, port=first_port)
    time.sleep(1.2)
    _deliver(fx, "back").expect(250)
    check(_messages_in(folder) == ["msg-1.eml"], "the recovered backend did not get the mail")
    check(len(fx.messages()) == 1, "the second backend got the mail again")


def test_all_backends_down(fx):
    fx.add_user(ALICE)
    other = free_ports(1)[0]
    fx.start({"backend": {"address": None, "addresses": ["127.0.0.1:%d" % fx.closed_port,
                                                         "127.0.0.1:%d" % other]}},
             backend=False)
    d = fx.session("none")
    d.cmd("MAIL FROM:<alice@example.com>").expect(421, "4.4.1")
    ev = fx.wait_event("backend.error")
    check(ev[0]["failure"] == "unavailable", "backend.error: %r" % ev)
