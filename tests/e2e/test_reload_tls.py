"""SIGHUP reloads the certificates: rotating them drops no connection, a session in
flight keeps its TLS session and finishes its mail, new sessions get the new
certificate, and a broken pair keeps the old one serving."""

import os
import socket
import ssl
import subprocess

from harness import HOSTNAME, Dialog, check, client_tls_context

ALICE = "alice@example.com"


def _make_pair(fx, cn, cert, key):
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=DNS:gw.test", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)


def _der(cert_path):
    with open(cert_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def _served_cert(fx, kind):
    """The DER certificate a new session on listener `kind` is given."""
    s = socket.create_connection(("127.0.0.1", fx.ports[kind]), timeout=10)
    try:
        if kind == "starttls":
            d = Dialog(s)
            d.reply()
            d.ehlo()
            d.starttls()
            s = d.sock
        else:
            s = client_tls_context().wrap_socket(s, server_hostname=HOSTNAME)
        return s.getpeercert(binary_form=True)
    finally:
        s.close()


def _start_with_live_pair(fx):
    """Starts the gateway on its own certificate files (live.crt/live.key, for
    "old.gw.test"); returns (cert path, key path, the certificate's DER)."""
    fx.add_user(ALICE)
    cert = os.path.join(fx.dir, "live.crt")
    key = os.path.join(fx.dir, "live.key")
    _make_pair(fx, "old.gw.test", cert, key)
    old = _der(cert)
    fx.start({"tls": {"certificate": cert, "private_key": key}})
    return cert, key, old


def test_certificate_rotation_drops_no_connection(fx):
    cert, key, old = _start_with_live_pair(fx)
    check(_served_cert(fx, "implicit") == old, "the configured certificate is not served")

    # A session in flight on each TLS listener, one of them mid-DATA.
    in_data = fx.session("implicit")
    in_data.cmd("MAIL FROM:<%s>" % ALICE).expect(250)
    in_data.cmd("RCPT TO:<someone@example.net>").expect(250)
    in_data.cmd("DATA").expect(354)
    in_data.send("Subject: rotation\r\n\r\nbefore the rotation\r\n")
    idle = fx.session("starttls")
    check(idle.sock.getpeercert(binary_form=True) == old, "starttls session cert")

    # Rotate: new files in place (temp + rename, as certbot and Kubernetes do), SIGHUP.
    _make_pair(fx, "new.gw.test", cert + ".tmp", key + ".tmp")
    new = _der(cert + ".tmp")
    os.rename(key + ".tmp", key)
    os.rename(cert + ".tmp", cert)
    event = fx.reload()
    check(event.get("result") == "success", "reload: %r" % event)

    # The old sessions go on with their TLS sessions.
    in_data.send("after the rotation\r\n.\r\n")
    in_data.reply().expect(250)
    in_data.cmd("QUIT").expect(221)
    idle.cmd("MAIL FROM:<%s>" % ALICE).expect(250)
    idle.cmd("RSET").expect(250)
    idle.cmd("QUIT").expect(221)
    body = fx.message(1)
    check(b"before the rotation\r\nafter the rotation\r\n" in body, "message: %r" % body)
    # New sessions get the new certificate on both TLS listeners.
    check(_served_cert(fx, "implicit") == new, "implicit listener still serves the old cert")
    check(_served_cert(fx, "starttls") == new, "starttls listener still serves the old cert")
    # Both in-flight sessions ended with their QUIT, after the reload.
    reloaded = fx.events("reload")[-1]["ts"]
    # ("closed" = the gateway closed after QUIT; the certificate checks just hang up.)
    after = [e for e in fx.events("disconnect")
             if e["ts"] >= reloaded and e.get("reason") == "closed"]
    check(len(after) == 2 and sorted(e["messages"] for e in after) == [0, 1],
          "in-flight sessions: %r" % after)


def test_broken_certificate_on_reload_keeps_the_old_one(fx):
    cert, key, old = _start_with_live_pair(fx)
    # A certificate whose key is another one: the pair does not match.
    other_key = os.path.join(fx.dir, "other.key")
    _make_pair(fx, "new.gw.test", cert + ".new", other_key)
    os.rename(cert + ".new", cert)
    event = fx.reload()
    check(event.get("result") == "failure", "reload accepted a mismatched pair: %r" % event)
    check(cert in event.get("error", "") or key in event.get("error", ""),
          "reload error does not name the file: %r" % event)
    check(_served_cert(fx, "implicit") == old, "the old certificate is no longer served")
    fx.session("implicit").cmd("QUIT").expect(221)
