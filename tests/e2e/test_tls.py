"""TLS: STARTTLS command injection, protocol versions, AEAD-only ciphers, both certificates."""

import re
import subprocess
import time

from harness import PASSWORD, check, ehlo_caps, free_ports, plain_blob

ALICE = "alice@example.com"
# Debian's OpenSSL client refuses TLS < 1.2 and legacy ciphers at its default security
# level by itself; SECLEVEL=0 makes it offer them, so only the gateway can refuse.
LEGACY = "DEFAULT:@SECLEVEL=0"


def _s_client(fx, args, starttls=True, kind=None, stdin="QUIT\n"):
    port = fx.ports[kind or ("starttls" if starttls else "implicit")]
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-brief", "-crlf",
           "-ign_eof", "-servername", "gw.test"]
    if starttls:
        cmd += ["-starttls", "smtp"]
    return fx.run_tool(cmd + list(args), stdin=stdin, timeout=30)


def _established(p):
    out = p.stdout + p.stderr
    return "CONNECTION ESTABLISHED" in out, out


def _field(out, name):
    m = re.search(r"^%s: (.*)$" % re.escape(name), out, re.M)
    return m.group(1).strip() if m else None


def _control_server(fx, server_args, client_args):
    """Proves the local OpenSSL client really offers what a negative test sends: the same
    client arguments must connect to an `openssl s_server` configured to accept them."""
    port = free_ports(1)[0]
    srv = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port,
                            "-naccept", "1", *server_args],
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd=fx.dir)
    try:
        deadline = time.monotonic() + 5
        while True:
            p = fx.run_tool(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                             "-brief", *client_args], stdin="", timeout=20)
            ok, out = _established(p)
            if ok or "Connection refused" not in out or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        check(ok, "control: this OpenSSL client cannot connect with %r even to a server that "
              "allows it, so the test would prove nothing:\n%s" % (client_args, out[-1500:]))
        return out
    finally:
        srv.kill()
        srv.wait()


def test_starttls_command_injection_discarded(fx):
    fx.add_user(ALICE)
    fx.start()
    d = fx.connect("starttls")
    d.ehlo()
    d.send("STARTTLS\r\nNOOP\r\n")  # one write: the NOOP is plaintext injected before TLS
    d.reply().expect(220, "2.0.0")
    early = d.pending(0.3)
    check(early == b"", "gateway answered the injected NOOP before TLS: %r" % early)
    d.wrap_tls()
    d.send("EHLO client.test\r\n")
    r = d.reply()
    check(r.code == 250 and r.lines[0].split()[0] == "gw.test",
          "first reply after the handshake should be the EHLO reply, got %r" % r)
    rest = d.pending(1.0)
    check(rest == b"", "more replies after EHLO (the injected NOOP was answered?): %r" % rest)
    d.auth_plain(ALICE, PASSWORD).expect(235)


def test_starttls_injection_of_auth_discarded(fx):
    fx.add_user(ALICE)
    fx.start()
    d = fx.connect("starttls")
    d.ehlo()
    blob = "AUTH PLAIN " + plain_blob(ALICE, PASSWORD)
    d.send("STARTTLS\r\n" + blob + "\r\n")
    d.reply().expect(220, "2.0.0")
    early = d.pending(0.3)
    check(early == b"", "gateway answered the injected AUTH before TLS: %r" % early)
    d.wrap_tls()
    d.ehlo()
    check(d.pending(1.0) == b"", "extra replies after EHLO")
    # the injected AUTH must not have authenticated the session
    d.cmd("MAIL FROM:<alice@example.com>").expect(530, "5.7.0")


def test_s_client_starttls_protocol(fx):
    fx.start()
    p = _s_client(fx, [])
    ok, out = _established(p)
    check(ok, "openssl s_client -starttls smtp failed:\n%s" % out[-2000:])
    version = _field(out, "Protocol version")
    check(version in ("TLSv1.2", "TLSv1.3"), "protocol %r:\n%s" % (version, out[-2000:]))
    check("221" in p.stdout, "no 221 after QUIT over TLS:\n%s" % out[-2000:])


def test_implicit_tls_protocol(fx):
    fx.start()
    p = _s_client(fx, [], starttls=False)
    ok, out = _established(p)
    check(ok, "openssl s_client to the implicit listener failed:\n%s" % out[-2000:])
    check(_field(out, "Protocol version") in ("TLSv1.2", "TLSv1.3"), out[-2000:])
    check("220 gw.test ESMTP ready" in p.stdout, "no greeting over TLS:\n%s" % out[-2000:])


def test_tls12_aead_accepted(fx):
    fx.start()
    for cipher in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                   "ECDHE-ECDSA-CHACHA20-POLY1305"):
        p = _s_client(fx, ["-tls1_2", "-cipher", cipher])
        ok, out = _established(p)
        check(ok, "TLS 1.2 with %s failed:\n%s" % (cipher, out[-2000:]))
        check(_field(out, "Protocol version") == "TLSv1.2", out[-2000:])
        check(_field(out, "Ciphersuite") == cipher, "cipher: %r" % _field(out, "Ciphersuite"))


def test_tls11_refused(fx):
    fx.start()
    for starttls in (True, False):
        ok, out = _established(_s_client(fx, ["-cipher", LEGACY], starttls=starttls))
        check(ok, "control: a default handshake fails too:\n%s" % out[-2000:])
    _control_server(fx, ["-cert", fx.rsa_cert, "-key", fx.rsa_key, "-tls1_1",
                         "-cipher", LEGACY], ["-tls1_1", "-cipher", LEGACY])
    for kind, starttls in (("starttls", True), ("implicit", False)):
        p = _s_client(fx, ["-tls1_1", "-cipher", LEGACY], starttls=starttls)
        ok, out = _established(p)
        check(not ok, "%s listener accepted TLS 1.1:\n%s" % (kind, out[-2000:]))
        p = _s_client(fx, ["-tls1", "-cipher", LEGACY], starttls=starttls)
        ok, out = _established(p)
        check(not ok, "%s listener accepted TLS 1.0:\n%s" % (kind, out[-2000:]))


def test_tls12_cbc_ciphers_refused(fx):
    fx.start()
    cbc = "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:" \
          "ECDHE-RSA-AES256-SHA384:AES128-SHA:AES256-GCM-SHA384"
    cbc_legacy = cbc + ":@SECLEVEL=0"
    _control_server(fx, ["-cert", fx.ecdsa_cert, "-key", fx.ecdsa_key, "-tls1_2",
                         "-cipher", "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"],
                    ["-tls1_2", "-cipher", cbc_legacy])
    ok, out = _established(_s_client(fx, ["-tls1_2"]))
    check(ok, "control: a default TLS 1.2 handshake fails too:\n%s" % out[-2000:])
    # AES256-GCM-SHA384 is AEAD but has no forward secrecy (static RSA key exchange)
    p = _s_client(fx, ["-tls1_2", "-cipher", cbc_legacy])
    ok, out = _established(p)
    check(not ok, "gateway accepted a non-AEAD or non-ECDHE TLS 1.2 cipher: %r\n%s"
          % (_field(out, "Ciphersuite"), out[-2000:]))


def test_both_certificates_served(fx):
    """[tls] certificate/private_key are arrays: ECDSA and RSA pairs, chosen per client."""
    fx.start()
    seen = {}
    for label, args in (("ecdsa13", ["-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256"]),
                        ("rsa13", ["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"]),
                        ("ecdsa12", ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]),
                        ("rsa12", ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"])):
        p = _s_client(fx, args)
        ok, out = _established(p)
        check(ok, "%s handshake failed:\n%s" % (label, out[-2000:]))
        seen[label] = _field(out, "Peer certificate") or ""
    for label, cn in (("ecdsa13", "ecdsa.gw.test"), ("ecdsa12", "ecdsa.gw.test"),
                      ("rsa13", "rsa.gw.test"), ("rsa12", "rsa.gw.test")):
        check(cn in seen[label], "%s: expected certificate %s, got %r" % (label, cn, seen[label]))


def test_tls_logged(fx):
    fx.add_user(ALICE)
    fx.start()
    c = fx.smtp("starttls", login=(ALICE, PASSWORD))
    version = c.sock.version()
    cipher = c.sock.cipher()[0]
    c.quit()
    ev = fx.wait_event("tls", lambda e: e.get("version") == version)
    e = ev[-1]
    check(e.get("cipher"), "tls event has no cipher: %r" % e)
    check("session" in e, "tls event has no session: %r" % e)
    # BoringSSL and OpenSSL name TLS 1.3 suites the same way; TLS 1.2 names may differ
    if version == "TLSv1.3":
        check(e["cipher"] == cipher, "tls event cipher %r, client saw %r" % (e["cipher"], cipher))


def test_starttls_not_offered_twice(fx):
    fx.start()
    d = fx.connect("starttls")
    d.ehlo()
    d.starttls()
    r = d.ehlo()
    check("STARTTLS" not in ehlo_caps(r), "STARTTLS advertised inside TLS")
    r = d.cmd("STARTTLS")
    check(r.code in (503, 454), "second STARTTLS: expected 503 or 454, got %r" % r)
    d.cmd("NOOP").expect(250)
