"""Handshake signatures made off the event loops ([tls] signing_threads, issue 7): many
full handshakes at once, on ECDSA and RSA certificates, each session's mail arriving
intact at the backend; clients that vanish while their signature is being made; and the
same with the loops signing themselves (signing_threads = 0, the default). Python's smtplib over
OpenSSL and raw ssl sockets are the clients."""

import socket
import ssl
import threading

from harness import HOSTNAME, PASSWORD, check, client_tls_context, free_ports

ALICE = "alice@example.com"
CLIENTS = 24


def _send_concurrently(fx, kind, contexts):
    """CLIENTS sessions at once, each a fresh full handshake; returns the bodies sent."""
    import smtplib
    errors, bodies, certificates = [], {}, set()
    start = threading.Barrier(CLIENTS)

    def client(i):
        body = b"Subject: handshake %d\r\n\r\nsent over full handshake %d\r\n" % (i, i)
        bodies[i] = body
        try:
            start.wait()
            ctx = contexts[i % len(contexts)]
            if kind == "implicit":
                c = smtplib.SMTP_SSL("127.0.0.1", fx.ports[kind], timeout=30, context=ctx)
                c.ehlo("client.test")
            else:
                c = smtplib.SMTP("127.0.0.1", fx.ports[kind], timeout=30)
                c.ehlo("client.test")
                c.starttls(context=ctx)
                c.ehlo("client.test")
            der = c.sock.getpeercert(binary_form=True)
            certificates.update(n for n in (b"ecdsa.gw.test", b"rsa.gw.test") if n in der)
            c.login(ALICE, PASSWORD)
            c.sendmail(ALICE, ["rcpt%d@example.net" % i], body)
            c.quit()
        except Exception as error:  # noqa: BLE001 - reported below with the client's number
            errors.append("client %d: %r" % (i, error))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    check(not errors, "sessions failed: %s" % errors[:5])
    return set(bodies.values()), certificates


def _context(version=None, ciphers=None):
    ctx = client_tls_context()
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    if ciphers:
        ctx.set_ciphers(ciphers)  # TLS 1.2: the suite decides the certificate kind
    return ctx


def _check_delivered(fx, bodies):
    fx.wait_for(lambda: len(fx.messages()) >= len(bodies), 10,
                "the backend got %d of %d messages" % (len(fx.messages()), len(bodies)))
    got = set(fx.messages().values())
    check(got == bodies, "the backend's messages differ from those sent: missing %r, extra %r"
          % (sorted(bodies - got)[:2], sorted(got - bodies)[:2]))


def _check_handshakes(fx, expected):
    fx.wait_for(lambda: len(fx.events("tls")) >= expected, 5,
                "%d tls events logged, expected %d" % (len(fx.events("tls")), expected))
    events = fx.events("tls")
    check(not any(e.get("resumed") for e in events), "a handshake was resumed: %r" % events[:2])


def _signatures(fx):
    """portcullis_tls_signatures_total by `where`, from the metrics endpoint."""
    import urllib.request
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % fx.metrics_port,
                                  timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("portcullis_tls_signatures_total{"):
            where = line.split('where="')[1].split('"')[0]
            out[where] = float(line.rsplit(" ", 1)[1])
    return out


def test_concurrent_full_handshakes_on_the_signing_pool(fx):
    fx.add_user(ALICE)
    fx.metrics_port = free_ports(1)[0]
    fx.start({"tls": {"signing_threads": 2},
              "metrics": {"address": "127.0.0.1:%d" % fx.metrics_port}})
    before = _signatures(fx)  # the harness's own readiness probe may have made one
    bodies, _ = _send_concurrently(fx, "implicit", [_context()])
    _check_delivered(fx, bodies)
    _check_handshakes(fx, CLIENTS)
    after = _signatures(fx)
    check(after["pool"] - before["pool"] == CLIENTS and after["loop"] == 0,
          "signatures by where: before %r, after %r" % (before, after))


def test_ecdsa_and_rsa_signatures_tls12_and_13_on_the_pool(fx):
    """Both certificate kinds and both versions over STARTTLS: TLS 1.3 CertificateVerify
    and TLS 1.2 ServerKeyExchange signatures by the ECDSA and the RSA key, on the pool."""
    fx.add_user(ALICE)
    fx.start({"tls": {"signing_threads": 2}})
    contexts = [
        _context(ssl.TLSVersion.TLSv1_3),
        _context(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256"),
        _context(ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-GCM-SHA256"),
    ]
    bodies, certificates = _send_concurrently(fx, "starttls", contexts)
    _check_delivered(fx, bodies)
    check(certificates == {b"ecdsa.gw.test", b"rsa.gw.test"},
          "expected both certificates to be served, saw %r" % sorted(certificates))
    events = fx.events("tls")
    check({e.get("version") for e in events} >= {"TLSv1.2", "TLSv1.3"},
          "expected both TLS versions, got %r" % sorted({e.get("version") for e in events}))


def test_the_loops_sign_themselves_by_default(fx):
    fx.add_user(ALICE)
    fx.metrics_port = free_ports(1)[0]
    fx.start({"metrics": {"address": "127.0.0.1:%d" % fx.metrics_port}})  # signing_threads 0
    bodies, _ = _send_concurrently(fx, "implicit", [_context()])
    _check_delivered(fx, bodies)
    _check_handshakes(fx, CLIENTS)
    check(_signatures(fx) == {"pool": 0, "loop": 0},
          "with signing_threads = 0 nothing goes to a pool: %r" % _signatures(fx))


def test_clients_gone_during_the_handshake_leave_the_gateway_serving(fx):
    """ClientHello sent, connection dropped before the server's flight: the signature
    comes back for a session that no longer exists and is dropped."""
    fx.add_user(ALICE)
    fx.start({"tls": {"signing_threads": 1}})
    ctx = _context()
    for _ in range(40):
        raw = socket.create_connection(("127.0.0.1", fx.ports["implicit"]), timeout=10)
        tls = ctx.wrap_socket(raw, server_hostname=HOSTNAME, do_handshake_on_connect=False)
        tls.setblocking(False)
        try:
            tls.do_handshake()  # writes the ClientHello, then would wait for the server
        except ssl.SSLWantReadError:
            pass
        tls.close()
    c = fx.smtp("implicit", login=(ALICE, PASSWORD))
    c.sendmail(ALICE, ["after@example.net"], b"Subject: after\r\n\r\nstill serving\r\n")
    c.quit()
    check(fx.message(1) == b"Subject: after\r\n\r\nstill serving\r\n", "message after the drops")
    check(fx.gateway.poll() is None, "the gateway exited")
