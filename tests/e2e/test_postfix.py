"""End to end against a real Postfix (tests/e2e/postfix_mta.py): the real client address
and the login name reach Postfix's log and the Received header; PROXY headers; Postfix's
own STARTTLS with certificate verification; XCLIENT refused fails closed."""

import re

from harness import check, ehlo_caps
from postfix_mta import PostfixMTA
from test_backend_tls import backend_certificate

ALICE = "alice@example.com"
CLIENT_IP = "127.0.0.7"  # the client's address; the gateway itself connects from 127.0.0.1


def _send(d, rcpt="someone@example.net", subject="via Postfix", mail_params=""):
    d.cmd("MAIL FROM:<alice@example.com>%s" % mail_params).expect(250)
    d.cmd("RCPT TO:<%s>" % rcpt).expect(250)
    d.cmd("DATA").expect(354)
    d.send("From: alice@example.com\r\nSubject: %s\r\n\r\nHello Postfix.\r\n.\r\n" % subject)
    return d.reply()


def _received(message):
    """The first Received: header, unfolded."""
    m = re.search(rb"^Received: .*?(?=^\S)", message, re.M | re.S)
    check(m, "no Received header in %r" % message[:500])
    return re.sub(rb"\s+", b" ", m.group(0)).decode()


def _gateway(fx, mta, port=None, **backend):
    fx.add_user(ALICE)
    cfg = {"address": "127.0.0.1:%d" % (port or mta.port)}
    cfg.update(backend)
    fx.start({"backend": cfg}, backend=False)
    return fx


def test_postfix_xclient_real_client_and_login(fx):
    mta = PostfixMTA(fx).start()
    _gateway(fx, mta, identity="xclient")
    d = fx.session("starttls", source=CLIENT_IP)
    client_port = d.sock.getsockname()[1]
    r = _send(d).expect(250, "2.0.0")
    queue_id = re.search(r"queued as (\w+)", r.text).group(1)
    d.cmd("QUIT").expect(221)
    message = mta.wait_delivered()[0]
    received = _received(message)
    check(received.startswith("Received: from client.test (unknown [%s])" % CLIENT_IP)
          and "by mta.test (Postfix) with ESMTPA id %s" % queue_id in received,
          "Postfix's Received header does not show the real client: %s" % received)
    client_lines = mta.log_lines("%s: client=" % queue_id)
    check(client_lines and "client=unknown[%s], sasl_method=XCLIENT, sasl_username=%s"
          % (CLIENT_IP, ALICE) in client_lines[0],
          "Postfix's log does not show the client and login: %r" % client_lines)
    disconnect = mta.log_lines("disconnect from unknown[%s]" % CLIENT_IP)
    check(disconnect, "no disconnect line for the real client:\n%s" % mta.maillog()[-2000:])


def test_postfix_proxy_v1_and_v2(fx):
    mta = PostfixMTA(fx).start()
    _gateway(fx, mta, port=mta.proxy_port, identity="proxy-v1")
    d = fx.session("implicit", source=CLIENT_IP)
    _send(d, subject="v1").expect(250)
    d.cmd("QUIT").expect(221)
    check(mta.log_lines("connect from unknown[%s]" % CLIENT_IP),
          "Postfix did not see the real client behind PROXY v1:\n%s" % mta.maillog()[-2000:])
    received = _received(mta.wait_delivered()[0])
    check(received.startswith("Received: from client.test (unknown [%s])" % CLIENT_IP),
          "Received: %s" % received)

    fx.reload({"backend": {"identity": "proxy-v2"}})
    d = fx.session("implicit", source="127.0.0.8")
    _send(d, subject="v2").expect(250)
    d.cmd("QUIT").expect(221)
    messages = mta.wait_delivered(2)
    check(any("[127.0.0.8]" in _received(m) for m in messages),
          "Received headers: %r" % [_received(m) for m in messages])
    check(mta.log_lines("connect from unknown[127.0.0.8]"),
          "Postfix did not see the real client behind PROXY v2")


def test_postfix_starttls_verify_with_xclient(fx):
    cert, key = backend_certificate(fx, "mta.test")
    mta = PostfixMTA(fx, tls=(cert, key)).start()
    _gateway(fx, mta, identity="xclient", tls="starttls-verify", ca_file=cert,
             tls_name="mta.test")
    d = fx.session("starttls", source=CLIENT_IP)
    _send(d).expect(250)
    d.cmd("QUIT").expect(221)
    received = _received(mta.wait_delivered()[0])
    check(re.search(r"from client\.test \(unknown \[127\.0\.0\.7\]\) \(using TLSv1\.[23] ", received)
          and "with ESMTPSA" in received,
          "Received header does not show TLS from the gateway: %s" % received)
    check(mta.log_lines("TLS connection established from"),
          "Postfix logged no TLS connection:\n%s" % mta.maillog()[-2000:])
    check(mta.log_lines("sasl_username=%s" % ALICE), "login name missing in Postfix's log")


def test_postfix_starttls_verify_wrong_name_fails_closed(fx):
    cert, key = backend_certificate(fx, "mta.test")
    mta = PostfixMTA(fx, tls=(cert, key)).start()
    _gateway(fx, mta, identity="xclient", tls="starttls-verify", ca_file=cert,
             tls_name="other.test")
    d = fx.session("starttls")
    d.cmd("MAIL FROM:<alice@example.com>").expect(421, "4.3.0")
    ev = fx.wait_event("backend.error", lambda e: e.get("failure") == "tls")
    check("certificate" in ev[0]["reason"].lower(), "reason: %r" % ev)
    check(not mta.log_lines("client="), "Postfix started a transaction:\n%s" % mta.maillog())
    check(mta.delivered() == [], "Postfix delivered a message over an unverified connection")


def test_postfix_refuses_xclient_fails_closed(fx):
    # Postfix does not offer XCLIENT to hosts outside smtpd_authorized_xclient_hosts.
    mta = PostfixMTA(fx, xclient_hosts="192.0.2.1").start()
    _gateway(fx, mta, identity="xclient")
    d = fx.session("starttls", source=CLIENT_IP)
    d.cmd("MAIL FROM:<alice@example.com>").expect(421, "4.3.0")
    ev = fx.wait_event("backend.error", lambda e: e.get("failure") == "identity")
    check(ev[0]["level"] == "error", "backend.error: %r" % ev)
    check(not mta.log_lines("client="), "Postfix got a transaction without the client identity")


def test_postfix_capabilities_and_dsn_smtputf8(fx):
    mta = PostfixMTA(fx).start()
    _gateway(fx, mta, identity="xclient")
    d = fx.session("none", source=CLIENT_IP)
    caps = ehlo_caps(d.ehlo())
    check(caps.get("SIZE") == ["10240000"],
          "SIZE should be Postfix's 10240000 (smaller than 50MiB): %r" % caps)
    for kw in ("8BITMIME", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES", "PIPELINING"):
        check(kw in caps, "%s not offered though Postfix has it: %r" % (kw, caps))
    for kw in ("XCLIENT", "VRFY", "ETRN", "CHUNKING"):
        check(kw not in caps, "%s leaked from Postfix: %r" % (kw, caps))
    _send(d, rcpt="j\u00f8rn@example.net",
          mail_params=" SMTPUTF8 BODY=8BITMIME RET=HDRS ENVID=id+2B1").expect(250)
    delivered = mta.wait_delivered()[0]
    check("j\u00f8rn@example.net".encode() in delivered, "delivered: %r" % delivered[:600])
    check(mta.log_lines("orig_to=<j\u00f8rn@example.net>") or
          mta.log_lines("to=<j\u00f8rn@example.net>"),
          "Postfix's log does not show the UTF-8 recipient:\n%s" % mta.maillog()[-2000:])
    check(fx.events("backend.probe")[0]["result"] == "ok", "probe against Postfix failed")
