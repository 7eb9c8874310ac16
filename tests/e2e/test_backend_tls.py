"""TLS towards the backend: tls = "starttls" and "starttls-verify"."""

import os
import re
import subprocess

from harness import check

ALICE = "alice@example.com"


def backend_certificate(fx, name="mta.test"):
    """A self-signed certificate for the backend (names `name` and 127.0.0.1); it is its
    own CA, so it doubles as the gateway's ca_file."""
    cert = os.path.join(fx.dir, "backend.crt")
    key = os.path.join(fx.dir, "backend.key")
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=DNS:%s,IP:127.0.0.1" % name,
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    return cert, key


def _send(d):
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("RCPT TO:<someone@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: tls\r\n\r\nover TLS\r\n.\r\n")
    return d.reply()


def _tls_notes(fx):
    return sorted(f for f in os.listdir(fx.mail_dir) if re.match(r"tls-\d+\.txt$", f))


def test_backend_starttls(fx):
    fx.add_user(ALICE)
    cert, key = backend_certificate(fx)
    fx.start({"backend": {"tls": "starttls"}}, backend_args=["--starttls", cert, key])
    d = fx.session("starttls")
    _send(d).expect(250, "2.0.0", "QID1")
    check(_tls_notes(fx), "the backend never saw a TLS handshake")
    raw = fx.backend_raw()
    # the backend records plaintext; after STARTTLS it saw EHLO again, then the mail
    check(re.search(rb"STARTTLS\r\nEHLO gw\.test\r\nMAIL FROM:<alice@example\.com>", raw),
          "expected STARTTLS, EHLO, MAIL: %r" % raw[:500])
    check(fx.message(1).endswith(b"over TLS\r\n"), "message: %r" % fx.message(1))


def test_backend_starttls_discards_bytes_sent_before_the_handshake(fx):
    fx.add_user(ALICE)
    cert, key = backend_certificate(fx)
    fx.start({"backend": {"tls": "starttls"}},
             backend_args=["--starttls", cert, key, "--starttls-inject"])
    d = fx.session("starttls")
    _send(d).expect(250, "2.0.0", "QID1")
    check(not fx.events("backend.error"), "backend.error: %r" % fx.events("backend.error"))


def test_backend_starttls_not_offered_fails_closed(fx):
    fx.add_user(ALICE)
    fx.start({"backend": {"tls": "starttls"}})  # the backend has no STARTTLS
    d = fx.session("starttls")
    d.cmd("MAIL FROM:<alice@example.com>").expect(421, "4.3.0")
    ev = fx.wait_event("backend.error", lambda e: e.get("failure") == "tls")
    check("STARTTLS" in ev[0]["reason"], "reason: %r" % ev)
    check(b"MAIL FROM" not in fx.backend_raw(), "MAIL went to the backend in the clear")


def test_backend_starttls_verify_accepts_the_expected_name(fx):
    fx.add_user(ALICE)
    cert, key = backend_certificate(fx)
    fx.start({"backend": {"tls": "starttls-verify", "ca_file": cert, "tls_name": "mta.test"}},
             backend_args=["--starttls", cert, key])
    d = fx.session("starttls")
    _send(d).expect(250, "2.0.0", "QID1")
    tls = fx.events("backend.tls")
    check(tls and tls[-1]["verified"] is True, "backend.tls: %r" % tls)


def test_backend_starttls_verify_matches_an_ip_address(fx):
    fx.add_user(ALICE)
    cert, key = backend_certificate(fx)
    # no tls_name: the backend address itself (127.0.0.1) must be in the certificate
    fx.start({"backend": {"tls": "starttls-verify", "ca_file": cert}},
             backend_args=["--starttls", cert, key])
    d = fx.session("starttls")
    _send(d).expect(250, "2.0.0", "QID1")


def test_backend_starttls_verify_fails_closed_on_a_wrong_name(fx):
    fx.add_user(ALICE)
    cert, key = backend_certificate(fx)
    fx.start({"backend": {"tls": "starttls-verify", "ca_file": cert,
                          "tls_name": "other.test"}},
             backend_args=["--starttls", cert, key])
    d = fx.session("starttls")
    d.cmd("MAIL FROM:<alice@example.com>").expect(421, "4.3.0")
    ev = fx.wait_event("backend.error", lambda e: e.get("failure") == "tls")
    check("certificate" in ev[0]["reason"].lower(), "reason: %r" % ev)
    check(b"MAIL FROM" not in fx.backend_raw(), "MAIL reached an unverified backend")
    check(fx.messages() == {}, "a message went to an unverified backend")


def test_backend_starttls_verify_fails_closed_on_an_unknown_ca(fx):
    fx.add_user(ALICE)
    cert, key = backend_certificate(fx)
    # the gateway trusts only its own listener certificate, not the backend's
    fx.start({"backend": {"tls": "starttls-verify", "ca_file": fx.ecdsa_cert,
                          "tls_name": "mta.test"}},
             backend_args=["--starttls", cert, key])
    d = fx.session("starttls")
    d.cmd("MAIL FROM:<alice@example.com>").expect(421, "4.3.0")
    ev = fx.wait_event("backend.error", lambda e: e.get("failure") == "tls")
    check("certificate" in ev[0]["reason"].lower(), "reason: %r" % ev)
    check(fx.messages() == {}, "a message went to an unverified backend")


def test_check_config_reports_a_missing_backend_ca_file(fx):
    fx.write_config({"backend": {"tls": "starttls-verify",
                                 "ca_file": os.path.join(fx.dir, "missing-ca.pem")}})
    p = fx.cli("check-config", "--config", fx.cfg)
    check(p.returncode == 1 and "missing-ca.pem" in p.stderr,
          "check-config: %d %r" % (p.returncode, p.stderr))
