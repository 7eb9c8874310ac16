"""Sender rules, per-message limits and smuggling-safe DATA."""

from harness import PASSWORD, PASSWORD_2, check, ehlo_caps

ALICE = "alice@example.com"


def test_sender_must_be_own_address(fx):
    fx.add_user(ALICE)
    fx.start()
    d = fx.session("starttls")
    d.cmd("MAIL FROM:<bob@example.com>").expect(553, "5.7.1")
    d.cmd("MAIL FROM:<alice@example.com.evil>").expect(553, "5.7.1")
    d.cmd("MAIL FROM:<>").expect(553, "5.7.1")
    d.cmd("MAIL FROM:<Alice@Example.COM>").expect(250)  # ASCII case is ignored
    d.cmd("RCPT TO:<someone@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: own\r\n\r\nx\r\n.\r\n")
    d.reply().expect(250)
    d.cmd("QUIT").expect(221)
    fx.message(1)
    raw = fx.backend_raw()
    check(b"MAIL FROM:<bob@example.com>" not in raw, "backend saw the forbidden sender")
    check(b"example.com.evil" not in raw, "backend saw the forbidden sender")
    check(b"MAIL FROM:<>" not in raw, "backend saw the null sender")


def test_sender_wildcard_domain(fx):
    fx.add_user("carol", PASSWORD_2, senders=["*@corp.example", "boss@example.org"])
    fx.start()
    d = fx.session("starttls", user="carol", password=PASSWORD_2)
    d.cmd("MAIL FROM:<x@other.example>").expect(553, "5.7.1")
    d.cmd("MAIL FROM:<x@sub.corp.example>").expect(553, "5.7.1")
    d.cmd("MAIL FROM:<carol>").expect(553)  # not an address, and not in the list
    d.cmd("MAIL FROM:<x@corp.example>").expect(250)
    d.cmd("RCPT TO:<someone@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: w\r\n\r\nx\r\n.\r\n")
    d.reply().expect(250, "2.0.0", "QID1")
    d.cmd("MAIL FROM:<boss@example.org>").expect(250)
    d.cmd("RSET").expect(250)
    raw = fx.backend_raw()
    check(b"MAIL FROM:<x@corp.example>" in raw, "backend did not get x@corp.example: %r" % raw)
    check(b"other.example" not in raw and b"sub.corp.example" not in raw,
          "backend saw a forbidden sender: %r" % raw)


def test_recipients_per_message_limit(fx):
    fx.add_user(ALICE)
    fx.start({"limits": {"recipients_per_message": 2}})
    d = fx.session("starttls")
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("RCPT TO:<r1@example.net>").expect(250)
    d.cmd("RCPT TO:<r2@example.net>").expect(250)
    d.cmd("RCPT TO:<r3@example.net>").expect(452, "4.5.3")
    d.cmd("DATA").expect(354)
    d.send("Subject: two\r\n\r\nx\r\n.\r\n")
    d.reply().expect(250)
    check(b"r3@example.net" not in fx.backend_raw(), "third recipient reached the backend")


def test_message_size_limit(fx):
    fx.add_user(ALICE)
    fx.start({"limits": {"message_size": "64KiB"}})
    d = fx.connect("implicit")
    caps = ehlo_caps(d.ehlo())
    check(caps.get("SIZE") == ["65536"], "SIZE should advertise 65536: %r" % caps.get("SIZE"))
    d.auth_plain(ALICE, PASSWORD).expect(235)
    d.cmd("MAIL FROM:<alice@example.com> SIZE=100000").expect(552, "5.3.4")
    d.cmd("MAIL FROM:<alice@example.com> SIZE=1000").expect(250)
    d.cmd("RCPT TO:<someone@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: big\r\n\r\n" + ("y" * 78 + "\r\n") * 1300 + ".\r\n")  # ~104 KB
    d.reply().expect(552, "5.3.4")
    d.cmd("NOOP").expect(250)
    check(fx.messages() == {}, "backend stored the oversized message")
    # a message under the limit still goes through afterwards
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("RCPT TO:<someone@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: small\r\n\r\nsmall\r\n.\r\n")
    d.reply().expect(250)
    check(sorted(fx.messages()) == [1], "messages: %r" % sorted(fx.messages()))


SMUGGLE = ("Subject: smuggling\r\n\r\nhello\n.\nMAIL FROM:<admin@example.com>\r\n"
           "RCPT TO:<victim@example.net>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n"
           "\r\n.\r\n")


def _smuggle(fx, d):
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("RCPT TO:<someone@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send(SMUGGLE)
    return d.reply()


def test_smuggling_bare_lf_rejected(fx):
    fx.add_user(ALICE)
    fx.start()  # default bare_line_endings = "reject"
    d = fx.session("starttls")
    _smuggle(fx, d).expect(550, "5.6.0")
    d.cmd("NOOP").expect(250)
    check(d.pending(0.5) == b"", "extra replies (the smuggled commands were answered?)")
    d.cmd("QUIT").expect(221)
    fx.wait_for(lambda: len(fx.events("disconnect")) >= len(fx.events("connect")) >= 1, 5,
                "session end not logged")
    raw = fx.backend_raw()
    check(b"admin@example.com" not in raw, "smuggled MAIL FROM reached the backend: %r" % raw)
    check(all(b"smuggled" not in m for m in fx.messages().values()),
          "backend stored the smuggled message: %r" % fx.messages())
    check(fx.messages() == {}, "backend stored a message: %r" % fx.messages())


def test_smuggling_bare_lf_normalized(fx):
    """Under "normalize" a bare LF is a line break inside the message and only
    CRLF.CRLF ends DATA: the lone "." between bare LFs is kept as content ".",
    re-encoded with the gateway's own line endings and dot-stuffing (".."), so the
    backend stores one message, not two."""
    fx.add_user(ALICE)
    fx.start({"limits": {"bare_line_endings": "normalize"}})
    d = fx.session("starttls")
    _smuggle(fx, d).expect(250, "2.0.0", "QID1")
    d.cmd("NOOP").expect(250)
    check(d.pending(0.5) == b"", "extra replies (the smuggled commands were answered?)")
    d.cmd("QUIT").expect(221)
    crlf = SMUGGLE[:-len(".\r\n")].replace("\r\n", "\n").replace("\n", "\r\n").encode()
    check(fx.message(1) == crlf, "backend message: %r" % fx.message(1))
    check(sorted(fx.messages()) == [1], "backend stored %d messages" % len(fx.messages()))
    raw = fx.backend_raw()
    stripped = raw.replace(b"\r\n", b"")
    check(b"\n" not in stripped and b"\r" not in stripped, "backend got a bare CR/LF: %r" % raw)
    check(b"hello\r\n..\r\nMAIL FROM:<admin@example.com>\r\n" in raw,
          "the lone dot was not kept and re-stuffed: %r" % raw)
    dot_lines = [l for l in raw.split(b"\r\n") if l == b"."]
    check(len(dot_lines) == 1, "backend got %d lone-dot lines, expected only the end of data: %r"
          % (len(dot_lines), raw))
