"""Structured logs: one JSON object per line with the documented events and fields."""

from harness import PASSWORD, b64, check, plain_blob

ALICE = "alice@example.com"


def _ended(fx):
    fx.wait_for(lambda: len(fx.events("disconnect")) >= len(fx.events("connect")) >= 1, 5,
                "not every session logged its disconnect")


def test_log_lines_are_json_with_common_fields(fx):
    fx.add_user(ALICE)
    fx.start()
    c = fx.smtp("starttls", login=(ALICE, PASSWORD))
    c.sendmail(ALICE, ["someone@example.net"], b"Subject: x\r\n\r\nx\r\n")
    c.quit()
    _ended(fx)
    lines = fx.log_lines()  # fails on any non-JSON line
    check(lines, "gateway logged nothing on stdout")
    for e in lines:
        for key in ("ts", "level", "event"):
            check(key in e, "log line without %r: %r" % (key, e))
        check(e["level"] in ("debug", "info", "warn", "error"), "bad level: %r" % e)
    listens = [e for e in lines if e["event"] == "listen"]
    check(len(listens) == 3, "expected 3 listen events, got %r" % listens)
    for name in ("connect", "tls", "auth", "message", "disconnect"):
        evs = [e for e in lines if e["event"] == name]
        check(evs, "no %r event logged" % name)
        for e in evs:
            check("session" in e, "%s line without session: %r" % (name, e))
    sessions = {e["session"] for e in lines if e["event"] == "message"}
    check(len(sessions) == 1, "message lines: %r" % sessions)
    sid = sessions.pop()
    kinds = [e["event"] for e in lines if e.get("session") == sid]
    check(kinds[0] == "connect" and kinds[-1] == "disconnect",
          "session %r events out of order: %r" % (sid, kinds))


def test_log_auth_success_and_failure(fx):
    fx.add_user(ALICE)
    fx.start()
    d = fx.connect("implicit")
    d.ehlo()
    d.auth_plain(ALICE, fx.secret("Wrong-horse-battery-99")).expect(535)
    d.auth_plain("ghost@example.com", PASSWORD).expect(535)
    d.cmd("AUTH LOGIN").expect(334)
    d.cmd(b64(ALICE)).expect(334)
    d.cmd(b64(PASSWORD)).expect(235)
    d.cmd("QUIT").expect(221)
    _ended(fx)
    auths = fx.events("auth")
    failures = [e for e in auths if e.get("result") == "failure"]
    successes = [e for e in auths if e.get("result") == "success"]
    check(len(failures) == 2 and len(successes) == 1, "auth events: %r" % auths)
    check({e.get("user") for e in failures} == {ALICE, "ghost@example.com"},
          "failure users: %r" % failures)
    check(successes[0].get("user") == ALICE, "success user: %r" % successes)
    check(successes[0].get("mechanism") == "LOGIN", "success mechanism: %r" % successes)
    check(failures[0].get("mechanism") == "PLAIN", "failure mechanism: %r" % failures)
    for e in auths:
        check("127.0.0.1" in str(e.get("client")), "auth line without client: %r" % e)


def test_log_message_line(fx):
    fx.add_user(ALICE)
    fx.start()
    body = b"Subject: sized\r\n\r\n" + b"0123456789" * 100 + b"\r\n"
    c = fx.smtp("starttls", login=(ALICE, PASSWORD))
    check(c.mail(ALICE)[0] == 250, "MAIL")
    check(c.rcpt("one@example.net")[0] == 250, "RCPT 1")
    check(c.rcpt("two@example.net")[0] == 250, "RCPT 2")
    code, resp = c.data(body)
    check(code == 250, "DATA %d %r" % (code, resp))
    c.quit()
    e = fx.wait_event("message")[-1]
    check(e.get("user") == ALICE, "user: %r" % e)
    check(e.get("from") == ALICE, "from: %r" % e)
    rc = e.get("recipients")  # the accepted recipients, as a count or as the list
    check(rc == 2 if isinstance(rc, int) else
          sorted(rc or []) == ["one@example.net", "two@example.net"], "recipients: %r" % e)
    size = e.get("size")
    check(isinstance(size, int) and abs(size - len(body)) <= 5,
          "size %r, message was %d octets" % (size, len(body)))
    check("queued as QID1" in str(e.get("backend_reply")), "backend_reply: %r" % e)


def test_password_never_logged(fx):
    fx.add_user(ALICE)
    fx.add_user("bob@example.com", fx.secret("Gl4ss-staple-w1ndow-otter-97"))
    fx.start()
    wrong = fx.secret("Almost-" + PASSWORD)
    d = fx.connect("starttls")
    d.ehlo()
    d.cmd("AUTH PLAIN " + plain_blob(ALICE, PASSWORD)).expect(538)  # before TLS
    d.starttls()
    d.ehlo()
    d.auth_plain(ALICE, wrong).expect(535)
    d.cmd("AUTH LOGIN").expect(334)
    d.cmd(b64(ALICE)).expect(334)
    d.cmd(b64(wrong)).expect(535)
    d.cmd("AUTH LOGIN " + b64("bob@example.com")).expect(334)
    d.cmd(b64("Gl4ss-staple-w1ndow-otter-97")).expect(235)
    d.cmd("QUIT").expect(221)
    _ended(fx)
    out = fx.stdout_text() + fx.stderr_text()
    for secret in (PASSWORD, wrong, "Gl4ss-staple-w1ndow-otter-97"):
        for form in (secret, b64(secret), plain_blob(ALICE, secret),
                     b64(secret)[:-4]):
            check(form not in out, "gateway output contains %r" % form)
    check("auth" in [e["event"] for e in fx.log_lines()], "no auth lines were logged at all")
