"""Greeting, EHLO capabilities and the commands the gateway answers itself."""

from harness import (BACKEND_BANNER_TEXT, DEFAULT_MESSAGE_SIZE, GREETING, PASSWORD, check,
                     ehlo_caps)


def _auth_mechs(caps):
    return {m.upper() for m in caps.get("AUTH", [])}


def _common_caps(caps, where):
    for kw in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE"):
        check(kw in caps, "%s: EHLO does not advertise %s: %r" % (where, kw, caps))
    check(caps["SIZE"] == [str(DEFAULT_MESSAGE_SIZE)],
          "%s: SIZE should be the configured limit %d, got %r"
          % (where, DEFAULT_MESSAGE_SIZE, caps["SIZE"]))


def test_greeting_on_every_listener(fx):
    fx.add_user("alice@example.com")
    fx.start()
    for kind in ("starttls", "implicit", "none"):
        d = fx.connect(kind)
        check(d.greeting.code == 220 and d.greeting.lines == [GREETING[4:]],
              "%s listener greeting: %r, expected %r" % (kind, d.greeting, GREETING))
        d.cmd("QUIT").expect(221, "2.0.0")


def test_backend_banner_never_reaches_client(fx):
    fx.add_user("alice@example.com")
    fx.start()
    d = fx.session("starttls")
    seen = [d.greeting]
    seen.append(d.cmd("MAIL FROM:<alice@example.com>").expect(250))
    seen.append(d.cmd("RCPT TO:<someone@example.net>").expect(250))
    seen.append(d.cmd("DATA").expect(354))
    d.send("Subject: banner\r\n\r\nhello\r\n.\r\n")
    seen.append(d.reply().expect(250))
    seen.append(d.cmd("EHLO again.test"))
    seen.append(d.cmd("NOOP"))
    seen.append(d.cmd("QUIT"))
    fx.message(1)
    text = " ".join(repr(r) for r in seen)
    check(BACKEND_BANNER_TEXT not in text and "backend.test" not in text,
          "backend banner/name leaked to the client: %s" % text)


def test_ehlo_starttls_listener_before_and_after_tls(fx):
    fx.start()
    d = fx.connect("starttls")
    r = d.ehlo()
    check(r.lines[0].split()[0] == "gw.test", "EHLO first line should name gw.test: %r" % r)
    caps = ehlo_caps(r)
    _common_caps(caps, "before TLS")
    check("STARTTLS" in caps, "STARTTLS not advertised before TLS: %r" % r)
    check("AUTH" not in caps, "AUTH advertised before TLS: %r" % r)
    d.starttls()
    r = d.ehlo()
    caps = ehlo_caps(r)
    _common_caps(caps, "after STARTTLS")
    check("STARTTLS" not in caps, "STARTTLS advertised again after TLS: %r" % r)
    check(_auth_mechs(caps) == {"PLAIN", "LOGIN"}, "AUTH PLAIN LOGIN expected after TLS: %r" % r)
    check(BACKEND_BANNER_TEXT not in repr(r), "backend EHLO leaked: %r" % r)


def test_ehlo_implicit_listener(fx):
    fx.start()
    d = fx.connect("implicit")
    r = d.ehlo()
    caps = ehlo_caps(r)
    _common_caps(caps, "implicit")
    check("STARTTLS" not in caps, "STARTTLS advertised on an implicit TLS listener: %r" % r)
    check(_auth_mechs(caps) == {"PLAIN", "LOGIN"}, "AUTH PLAIN LOGIN expected: %r" % r)


def test_ehlo_none_listener_allows_auth(fx):
    fx.add_user("alice@example.com")
    fx.start()
    d = fx.connect("none")
    r = d.ehlo()
    caps = ehlo_caps(r)
    _common_caps(caps, "none")
    check("STARTTLS" not in caps, "STARTTLS advertised on a tls=none listener: %r" % r)
    check(_auth_mechs(caps) == {"PLAIN", "LOGIN"}, "AUTH PLAIN LOGIN expected: %r" % r)
    d.auth_plain("alice@example.com", PASSWORD).expect(235, "2.7.0")


def test_helo_is_accepted(fx):
    fx.start()
    d = fx.connect("starttls")
    r = d.cmd("HELO client.test").expect(250)
    check(r.lines[0].split()[0] == "gw.test", "HELO reply should name gw.test: %r" % r)


def test_noop_rset_quit(fx):
    fx.start()
    d = fx.connect("starttls")
    d.ehlo()
    d.cmd("NOOP").expect(250, "2.0.0")
    d.cmd("RSET").expect(250, "2.0.0")
    d.cmd("QUIT").expect(221, "2.0.0")
    check(d.closed_within(3.0), "connection not closed after 221")
    check(d.leftover == b"", "gateway sent more after 221: %r" % d.leftover)


def test_vrfy_answered_locally(fx):
    fx.add_user("alice@example.com")
    fx.start()
    d = fx.session("starttls")
    d.cmd("VRFY someone@example.net").expect(252, "2.5.0")
    # a relayed message proves the backend connection existed while VRFY was sent
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("RCPT TO:<someone@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: v\r\n\r\nx\r\n.\r\n")
    d.reply().expect(250)
    d.cmd("VRFY postmaster").expect(252)
    d.cmd("QUIT").expect(221)
    fx.message(1)
    raw = fx.backend_raw()
    check(b"VRFY" not in raw.upper(), "backend saw VRFY: %r" % raw[:500])


def test_unknown_command_not_forwarded(fx):
    fx.add_user("alice@example.com")
    fx.start()
    d = fx.connect("starttls")
    d.cmd("XYZZY").expect(500, "5.5.1")
    d.ehlo()
    d.starttls()
    d.ehlo()
    d.auth_plain("alice@example.com", PASSWORD).expect(235)
    d.cmd("XYZZY plugh").expect(500, "5.5.1")
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("XYZZY").expect(500, "5.5.1")
    d.cmd("RCPT TO:<someone@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: x\r\n\r\nx\r\n.\r\n")
    d.reply().expect(250)
    d.cmd("QUIT").expect(221)
    fx.message(1)
    raw = fx.backend_raw()
    check(b"XYZZY" not in raw.upper(), "backend saw XYZZY: %r" % raw[:500])


def test_long_command_line_rejected_session_continues(fx):
    fx.start()
    d = fx.connect("starttls")
    d.ehlo()
    d.cmd("NOOP " + "a" * 595).expect(500, "5.5.2")  # 600 octets before CRLF
    d.cmd("NOOP").expect(250)
    d.cmd("MAIL FROM:<" + "b" * 700 + "@example.com>").expect(500, "5.5.2")
    d.cmd("NOOP").expect(250)


def test_mail_before_auth_rejected(fx):
    fx.add_user("alice@example.com")
    fx.start()
    for kind in ("starttls", "implicit", "none"):
        d = fx.connect(kind)
        d.ehlo()
        if kind == "starttls":
            d.starttls()
            d.ehlo()
        d.cmd("MAIL FROM:<alice@example.com>").expect(530, "5.7.0")
        for c in ("RCPT TO:<someone@example.net>", "DATA"):
            r = d.cmd(c)
            check(r.code in (530, 503), "%s before AUTH: expected 530 or 503, got %r" % (c, r))
    check(fx.messages() == {}, "backend got a message without AUTH")
    check(b"MAIL FROM" not in fx.backend_raw(), "backend saw MAIL before AUTH")


def test_mail_before_starttls_rejected(fx):
    fx.add_user("alice@example.com")
    fx.start()
    d = fx.connect("starttls")
    d.ehlo()
    d.cmd("MAIL FROM:<alice@example.com>").expect(530, "5.7.0")


def test_pipelined_transaction(fx):
    fx.add_user("alice@example.com")
    fx.start()
    d = fx.session("starttls")
    d.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<a@example.net>\r\n"
           "RCPT TO:<b@example.net>\r\nDATA\r\n")
    d.reply().expect(250)
    d.reply().expect(250)
    d.reply().expect(250)
    d.reply().expect(354)
    d.send("Subject: pipelined\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
    d.reply().expect(250, "2.0.0", "queued as QID1")
    d.reply().expect(250)
    d.reply().expect(221)
    check(fx.message(1) == b"Subject: pipelined\r\n\r\nbody\r\n", "body: %r" % fx.message(1))
    raw = fx.backend_raw()
    check(b"RCPT TO:<a@example.net>" in raw and b"RCPT TO:<b@example.net>" in raw,
          "backend missed a recipient: %r" % raw[:600])


def test_idle_client_times_out(fx):
    fx.start({"limits": {"command_timeout": "1s"}})
    d = fx.connect("starttls")
    d.ehlo()
    d.sock.settimeout(10)
    d.reply().expect(421, "4.4.2")
    check(d.closed_within(3.0), "connection stayed open after 421")


def test_second_gateway_on_the_same_smtp_port_refuses_to_start(fx):
    # The workers share their SMTP ports (SO_REUSEPORT); without a check, a second
    # gateway started by mistake with the same listeners would bind quietly and take
    # about half of the new connections.
    fx.add_user("alice@example.com")
    fx.start()
    other = fx.second_gateway()
    other.config["listener"] = fx.config["listener"]
    other.write_config()
    p = other.serve_expecting_refusal("SMTP ports already in use")
    check(p.returncode == 1, "second gateway exited %d" % p.returncode)
    check("127.0.0.1:%d" % fx.port_starttls in p.stderr and "Address already in use" in p.stderr
          and "another process" in p.stderr, "stderr: %r" % p.stderr)
    d = fx.session("starttls")  # the first gateway still serves
    d.cmd("NOOP").expect(250)
