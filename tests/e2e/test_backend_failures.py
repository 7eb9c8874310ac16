"""Backend failures become the right replies; a client that vanishes delivers nothing."""

import re
import time

from harness import PASSWORD, check

ALICE = "alice@example.com"


def _transaction(d, rcpts=("someone@example.net",), body="Subject: t\r\n\r\nbody\r\n"):
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    for r in rcpts:
        d.cmd("RCPT TO:<%s>" % r).expect(250)
    d.cmd("DATA").expect(354)
    d.send(body + ".\r\n")
    return d.reply()


def test_backend_rejects_message(fx):
    fx.add_user(ALICE)
    fx.start(backend_args=["--data-reply", "554 5.7.1 Spam"])
    d = fx.session("starttls")
    r = _transaction(d)
    check(r.code == 554 and r.lines[-1] == "5.7.1 Spam",
          "expected the backend's '554 5.7.1 Spam', got %r" % r)
    d.cmd("NOOP").expect(250)


def test_backend_closes_after_data(fx):
    fx.add_user(ALICE)
    fx.start(backend_args=["--close-after-data"])
    d = fx.session("implicit")
    r = _transaction(d)
    check(r.code == 451 and r.lines[-1].startswith("4.4."),
          "backend closed at end of data: expected 451 4.4.x, got %r" % r)
    check(fx.messages() == {}, "backend stored a message")


def test_backend_down(fx):
    fx.add_user(ALICE)
    fx.start({"backend": {"address": "127.0.0.1:%d" % fx.closed_port,
                          "connect_timeout": "2s"}}, backend=False)
    d = fx.connect("starttls")
    d.ehlo()
    d.starttls()
    d.ehlo()
    r = d.auth_plain(ALICE, PASSWORD)
    if r.code == 235:
        r = d.cmd("MAIL FROM:<alice@example.com>")
    check(r.code in (421, 451) and r.lines[-1].startswith("4.4."),
          "backend down: expected 421/451 4.4.x after AUTH or at MAIL, got %r" % r)


def test_backend_down_swaks_never_sees_250_for_data(fx):
    fx.add_user(ALICE)
    fx.start({"backend": {"address": "127.0.0.1:%d" % fx.closed_port}}, backend=False)
    p = fx.run_tool(["swaks", "--server", "127.0.0.1:%d" % fx.port_implicit, "--tlsc",
                     "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", PASSWORD,
                     "--from", ALICE, "--to", "someone@example.net", "--timeout", "20"])
    out = p.stdout + p.stderr
    check(p.returncode != 0, "swaks reported success with the backend down:\n%s" % out[-2000:])
    check("queued" not in out, "swaks saw a queued reply:\n%s" % out[-2000:])
    # swaks marks error replies "<** " in clear and "<~* " inside TLS
    check(re.search(r"^<[*~]\* +4\d\d 4\.4\.\d", out, re.M),
          "swaks saw no 4xx 4.4.x:\n%s" % out[-2000:])


def test_backend_rejects_one_recipient(fx):
    fx.add_user(ALICE)
    fx.start(backend_args=["--reject-rcpt", "nobody@example.net"])
    d = fx.session("starttls")
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("RCPT TO:<nobody@example.net>").expect(550, "5.1.1", "nobody@example.net")
    d.cmd("RCPT TO:<somebody@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: r\r\n\r\nhi\r\n.\r\n")
    d.reply().expect(250, "2.0.0", "QID1")
    check(fx.message(1) == b"Subject: r\r\n\r\nhi\r\n", "message: %r" % fx.message(1))


def test_backend_rejects_only_recipient(fx):
    fx.add_user(ALICE)
    fx.start(backend_args=["--reject-rcpt", "nobody@example.net"])
    d = fx.session("starttls")
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("RCPT TO:<nobody@example.net>").expect(550, "5.1.1")
    r = d.cmd("DATA")
    check(r.code in (503, 554), "DATA without accepted recipients: expected 503/554, got %r" % r)
    d.cmd("RSET").expect(250)
    check(fx.messages() == {}, "backend stored a message")


def test_slow_backend_greeting(fx):
    """235 waits for the backend session (opened at AUTH, like nginx): the first
    transaction then does not wait for the backend's greeting."""
    fx.add_user(ALICE)
    fx.start(backend_args=["--greeting-delay", "1.5"])
    d = fx.connect("starttls")
    d.ehlo()
    d.starttls()
    d.ehlo()
    started = time.monotonic()
    d.auth_plain(ALICE, PASSWORD).expect(235, "2.7.0")
    auth_s = time.monotonic() - started
    check(auth_s >= 1.3, "235 came %.2f s after AUTH, before the backend greeted (1.5 s)" % auth_s)
    started = time.monotonic()
    _transaction(d).expect(250, "2.0.0", "QID1")
    mail_s = time.monotonic() - started
    check(mail_s < 1.0, "the first transaction took %.2f s after 235" % mail_s)


def test_client_disconnects_mid_data(fx):
    fx.add_user(ALICE)
    fx.start()
    d = fx.session("starttls")  # a complete message first: the backend path works
    _transaction(d).expect(250)
    d.cmd("QUIT").expect(221)

    d = fx.session("implicit")
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("RCPT TO:<half@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: half\r\n\r\n" + "first half of the body\r\n" * 2000)
    d.close()
    fx.wait_for(lambda: len(fx.events("disconnect")) >= len(fx.events("connect")) >= 2, 5,
                "gateway did not log a disconnect for every connect (aborted session)")
    time.sleep(0.5)
    check(sorted(fx.messages()) == [1], "backend stored the half message: %r"
          % sorted(fx.messages()))
    raw = fx.backend_raw()
    ends = [l for l in raw.split(b"\n") if l in (b".", b".\r")]
    check(len(ends) == 1, "backend saw %d end-of-data lines, expected only the first message's"
          % len(ends))
