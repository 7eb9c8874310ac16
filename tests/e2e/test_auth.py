"""AUTH: mechanisms, failures, TLS requirement; swaks and curl as real clients."""

import os
import time

from harness import PASSWORD, PASSWORD_2, b64, check, plain_blob

ALICE = "alice@example.com"


def _tls_dialog(fx, kind="starttls"):
    d = fx.connect(kind)
    d.ehlo()
    if kind == "starttls":
        d.starttls()
        d.ehlo()
    return d


def test_auth_before_tls_needs_encryption(fx):
    fx.add_user(ALICE)
    fx.start()
    d = fx.connect("starttls")
    d.ehlo()
    d.cmd("AUTH PLAIN " + plain_blob(ALICE, PASSWORD)).expect(538, "5.7.11")
    d.cmd("AUTH LOGIN").expect(538, "5.7.11")
    d.cmd("MAIL FROM:<alice@example.com>").expect(530, "5.7.0")
    # the same connection still upgrades and then authenticates
    d.starttls()
    d.ehlo()
    d.auth_plain(ALICE, PASSWORD).expect(235, "2.7.0")


def test_auth_plain_success_then_mail(fx):
    fx.add_user(ALICE)
    fx.start()
    d = _tls_dialog(fx)
    d.auth_plain(ALICE, PASSWORD).expect(235, "2.7.0")
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("AUTH PLAIN " + plain_blob(ALICE, PASSWORD)).expect(503, "5.5.1")


def test_auth_plain_without_initial_response(fx):
    fx.add_user(ALICE)
    fx.start()
    d = _tls_dialog(fx, "implicit")
    r = d.cmd("AUTH PLAIN")
    check(r.code == 334 and r.lines == [""], "expected an empty 334 challenge, got %r" % r)
    d.cmd(plain_blob(ALICE, PASSWORD)).expect(235, "2.7.0")


def test_auth_login_success(fx):
    fx.add_user(ALICE)
    fx.start()
    d = _tls_dialog(fx)
    r = d.cmd("AUTH LOGIN")
    check(r.code == 334 and r.lines == ["VXNlcm5hbWU6"], "expected 334 VXNlcm5hbWU6, got %r" % r)
    r = d.cmd(b64(ALICE))
    check(r.code == 334 and r.lines == ["UGFzc3dvcmQ6"], "expected 334 UGFzc3dvcmQ6, got %r" % r)
    d.cmd(b64(PASSWORD)).expect(235, "2.7.0")


def test_auth_wrong_password(fx):
    fx.add_user(ALICE)
    fx.start()
    d = _tls_dialog(fx)
    t0 = time.monotonic()
    d.auth_plain(ALICE, fx.secret("Wrong-password-but-long-77")).expect(535, "5.7.8")
    check(time.monotonic() - t0 >= 0.18, "failure answered before failure_delay (200ms)")
    d.cmd("MAIL FROM:<alice@example.com>").expect(530, "5.7.0")
    # LOGIN with a wrong password, then the right one still works
    d.cmd("AUTH LOGIN").expect(334)
    d.cmd(b64(ALICE)).expect(334)
    d.cmd(b64("Wrong-password-but-long-77")).expect(535, "5.7.8")
    d.auth_plain(ALICE, PASSWORD).expect(235, "2.7.0")


def test_auth_unknown_user(fx):
    fx.add_user(ALICE)
    fx.start()
    d = _tls_dialog(fx)
    t0 = time.monotonic()
    d.auth_plain("nobody@example.com", PASSWORD).expect(535, "5.7.8")
    check(time.monotonic() - t0 >= 0.18, "unknown user answered before failure_delay (200ms)")
    d.cmd("MAIL FROM:<nobody@example.com>").expect(530, "5.7.0")


def test_auth_disabled_user(fx):
    fx.add_user(ALICE)
    fx.add_user("bob@example.com", PASSWORD_2)
    with open(fx.users_file) as f:
        lines = f.read().split("\n")
    header = '[users."bob@example.com"]'
    check(header in lines, "users.toml has no %s table:\n%s" % (header, "\n".join(lines)))
    lines.insert(lines.index(header) + 1, "disabled = true")
    with open(fx.users_file, "w") as f:
        f.write("\n".join(lines))
    fx.start()
    d = _tls_dialog(fx)
    d.auth_plain("bob@example.com", PASSWORD_2).expect(535, "5.7.8")
    d.auth_plain(ALICE, PASSWORD).expect(235, "2.7.0")  # the others still work


def test_auth_plain_authzid_must_match(fx):
    fx.add_user(ALICE)
    fx.add_user("bob@example.com", PASSWORD_2)
    fx.start()
    d = _tls_dialog(fx)
    d.auth_plain(ALICE, PASSWORD, authzid="bob@example.com").expect(535, "5.7.8")
    d.auth_plain(ALICE, PASSWORD, authzid=ALICE).expect(235, "2.7.0")


def test_auth_login_cancel(fx):
    fx.add_user(ALICE)
    fx.start()
    d = _tls_dialog(fx)
    d.cmd("AUTH LOGIN").expect(334)
    d.cmd("*").expect(501)
    d.cmd("AUTH LOGIN").expect(334)
    d.cmd(b64(ALICE)).expect(334)
    d.cmd("*").expect(501)
    d.cmd("AUTH PLAIN").expect(334)
    d.cmd("*").expect(501)
    d.cmd("NOOP").expect(250)
    d.auth_plain(ALICE, PASSWORD).expect(235)


def test_auth_bad_base64(fx):
    fx.add_user(ALICE)
    fx.start()
    d = _tls_dialog(fx)
    d.cmd("AUTH PLAIN !!!not-base64!!!").expect(501, "5.5.2")
    d.cmd("AUTH LOGIN").expect(334)
    d.cmd("@@@@").expect(501, "5.5.2")
    d.cmd("NOOP").expect(250)


def test_auth_unknown_mechanism(fx):
    fx.start()
    d = _tls_dialog(fx)
    d.cmd("AUTH CRAM-MD5").expect(504, "5.5.4")
    d.cmd("NOOP").expect(250)


def _swaks(fx, kind, tls_flag, mech, body="swaks test body"):
    p = fx.run_tool(["swaks", "--server", "127.0.0.1:%d" % fx.ports[kind], tls_flag,
                     "--auth", mech, "--auth-user", ALICE, "--auth-password", PASSWORD,
                     "--from", ALICE, "--to", "someone@example.net",
                     "--ehlo", "client.test", "--body", body, "--timeout", "20"])
    out = p.stdout + p.stderr
    check(p.returncode == 0, "swaks exited %d:\n%s" % (p.returncode, out[-3000:]))
    check("queued as QID1" in out, "swaks did not see the backend's queue id:\n%s" % out[-3000:])
    check("RecordingBackend" not in out, "backend banner reached swaks")
    return out


def test_swaks_starttls_auth_plain(fx):
    fx.add_user(ALICE)
    fx.start()
    _swaks(fx, "starttls", "--tls", "PLAIN")
    msg = fx.message(1)
    check(b"swaks test body" in msg, "body not relayed: %r" % msg[:300])


def test_swaks_implicit_auth_login(fx):
    fx.add_user(ALICE)
    fx.start()
    _swaks(fx, "implicit", "--tlsc", "LOGIN")
    msg = fx.message(1)
    check(b"swaks test body" in msg, "body not relayed: %r" % msg[:300])


def test_swaks_wrong_password_fails(fx):
    fx.add_user(ALICE)
    fx.start()
    p = fx.run_tool(["swaks", "--server", "127.0.0.1:%d" % fx.port_starttls, "--tls",
                     "--auth", "PLAIN", "--auth-user", ALICE,
                     "--auth-password", fx.secret("Not-the-right-one-12"),
                     "--from", ALICE, "--to", "someone@example.net", "--timeout", "20"])
    out = p.stdout + p.stderr
    check(p.returncode != 0, "swaks succeeded with a wrong password:\n%s" % out[-2000:])
    check("535 5.7.8" in out, "swaks did not see 535 5.7.8:\n%s" % out[-2000:])
    check(fx.messages() == {}, "a message reached the backend")


def test_curl_starttls_login(fx):
    fx.add_user(ALICE)
    fx.start()
    path = os.path.join(fx.dir, "curl.eml")
    body = b"From: alice@example.com\r\nSubject: curl\r\n\r\nvia curl STARTTLS\r\n"
    with open(path, "wb") as f:
        f.write(body)
    p = fx.run_tool(["curl", "-sS", "-v", "--ssl-reqd", "-k", "--max-time", "30",
                     "smtp://127.0.0.1:%d" % fx.port_starttls,
                     "--user", "%s:%s" % (ALICE, PASSWORD), "--login-options", "AUTH=LOGIN",
                     "--mail-from", ALICE, "--mail-rcpt", "someone@example.net",
                     "--upload-file", path])
    check(p.returncode == 0, "curl exited %d:\n%s" % (p.returncode, p.stderr[-3000:]))
    check("AUTH LOGIN" in p.stderr, "curl did not use AUTH LOGIN:\n%s" % p.stderr[-3000:])
    check("queued as QID1" in p.stderr, "curl did not see QID1:\n%s" % p.stderr[-3000:])
    check(fx.message(1) == body, "body differs: %r" % fx.message(1)[:300])
