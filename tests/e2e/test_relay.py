"""Relay: what the backend receives, byte for byte, and what the client is told."""

import os
import re

from harness import PASSWORD, Failure, check

ALICE = "alice@example.com"


def big_body(target=1024 * 1024):
    """~1 MiB with the dot-stuffing edge cases: ".", "..", leading dots, 998-octet
    lines, empty lines, 8-bit text; CRLF line endings, ending in CRLF."""
    head = [b"From: alice@example.com", b"To: someone@example.net",
            b"Subject: dots and long lines", b"MIME-Version: 1.0",
            b"Content-Type: text/plain; charset=utf-8", b"Content-Transfer-Encoding: 8bit",
            b"", b".", b"..", b"...", b". leading dot and space", b".\t", b"x" * 998,
            b"." * 998, b"." + b"y" * 997, "Grüße, ünïcödé — ✓".encode(), b"",
            b" .", b"end of head"]
    lines = list(head)
    size = sum(len(x) + 2 for x in lines)
    i = 0
    while size < target:
        i += 1
        chunk = [b".%d starts with a dot" % i, b"..%d two dots" % i, b".", b"..",
                 (b"%06d" % i) * 166 + b"xx", b"", b"plain line %d" % i,
                 b"." + (b"z" * 997)]
        lines += chunk
        size += sum(len(x) + 2 for x in chunk)
    lines.append(b"last line")
    return b"\r\n".join(lines) + b"\r\n"


def test_relay_reply_and_backend_dialog(fx):
    fx.add_user(ALICE)
    fx.start()
    c = fx.smtp("starttls", login=(ALICE, PASSWORD))
    body = b"From: alice@example.com\r\nSubject: hi\r\n\r\nHello backend.\r\n"
    code, resp = c.mail(ALICE)
    check(code == 250, "MAIL: %d %r" % (code, resp))
    code, resp = c.rcpt("someone@example.net")
    check(code == 250, "RCPT: %d %r" % (code, resp))
    code, resp = c.data(body)
    check((code, resp) == (250, b"2.0.0 Ok: queued as QID1"),
          "end of data: expected the backend's own '250 2.0.0 Ok: queued as QID1', got %d %r"
          % (code, resp))
    c.quit()
    check(fx.message(1) == body, "backend got %r" % fx.message(1))

    raw = fx.backend_raw()
    check(re.match(rb"(EHLO|HELO) \S+\r\n", raw), "backend dialog does not start with EHLO: %r"
          % raw[:200])
    check(re.search(rb"\r\nMAIL FROM:<alice@example\.com>[^\r\n]*\r\n"
                    rb"RCPT TO:<someone@example\.net>[^\r\n]*\r\nDATA\r\n", raw),
          "backend did not get MAIL, RCPT, DATA in order: %r" % raw[:600])
    data_at = raw.index(b"\r\nDATA\r\n") + len(b"\r\nDATA\r\n")
    check(raw[data_at:data_at + len(body) + 3] == body + b".\r\n",
          "backend DATA section: %r" % raw[data_at:data_at + len(body) + 40])
    check(re.sub(rb"\r\n", b"", raw).count(b"\n") == 0 and
          re.sub(rb"\r\n", b"", raw).count(b"\r") == 0,
          "backend got bare CR or LF: %r" % raw[:800])
    for word in (b"AUTH", b"STARTTLS", PASSWORD.encode()):
        check(word not in raw, "backend saw %r: %r" % (word, raw[:800]))


def test_relay_multiple_messages_one_session(fx):
    fx.add_user(ALICE)
    fx.start()
    c = fx.smtp("implicit", login=(ALICE, PASSWORD))
    for n in (1, 2, 3):
        check(c.mail(ALICE)[0] == 250, "MAIL %d" % n)
        check(c.rcpt("r%d@example.net" % n)[0] == 250, "RCPT %d" % n)
        check(c.rcpt("copy@example.net")[0] == 250, "RCPT copy %d" % n)
        code, resp = c.data(b"Subject: m%d\r\n\r\nbody %d\r\n" % (n, n))
        check(code == 250 and resp.endswith(b"queued as QID%d" % n),
              "message %d: %d %r" % (n, code, resp))
        if n == 2:
            check(c.rset()[0] == 250, "RSET")
    c.quit()
    for n in (1, 2, 3):
        check(fx.message(n) == b"Subject: m%d\r\n\r\nbody %d\r\n" % (n, n), "message %d" % n)
    raw = fx.backend_raw()
    check(raw.count(b"RCPT TO:<copy@example.net>") == 3, "copy recipient count: %r" % raw)


def test_relay_abandoned_transaction_not_delivered(fx):
    fx.add_user(ALICE)
    fx.start()
    c = fx.smtp("starttls", login=(ALICE, PASSWORD))
    check(c.mail(ALICE)[0] == 250, "MAIL")
    check(c.rcpt("dropped@example.net")[0] == 250, "RCPT")
    check(c.rset()[0] == 250, "RSET")
    check(c.mail(ALICE)[0] == 250, "MAIL 2")
    check(c.rcpt("kept@example.net")[0] == 250, "RCPT 2")
    code, resp = c.data(b"Subject: kept\r\n\r\nx\r\n")
    check(code == 250, "DATA: %d %r" % (code, resp))
    c.quit()
    check(fx.message(1) == b"Subject: kept\r\n\r\nx\r\n", "message 1")
    check(sorted(fx.messages()) == [1], "extra messages: %r" % sorted(fx.messages()))
    raw = fx.backend_raw()
    tail = raw[raw.rindex(b"MAIL FROM"):]
    check(b"dropped@example.net" not in tail, "RSET transaction leaked into the message")


def test_big_body_with_dots_smtplib_starttls(fx):
    fx.add_user(ALICE)
    fx.start()
    body = big_body()
    c = fx.smtp("starttls", login=(ALICE, PASSWORD))
    code, resp = c.mail(ALICE, ["BODY=8BITMIME", "SIZE=%d" % len(body)])
    check(code == 250, "MAIL: %d %r" % (code, resp))
    check(c.rcpt("someone@example.net")[0] == 250, "RCPT")
    code, resp = c.data(body)
    check(code == 250 and resp == b"2.0.0 Ok: queued as QID1", "DATA: %d %r" % (code, resp))
    c.quit()
    got = fx.message(1)
    if got != body:
        at = next((i for i, (a, b) in enumerate(zip(got, body)) if a != b), min(len(got),
                                                                                len(body)))
        raise Failure("body differs at octet %d (sent %d, backend got %d): sent %r, "
                             "got %r" % (at, len(body), len(got), body[at - 20:at + 40],
                                         got[at - 20:at + 40]))


def test_big_body_with_dots_curl_implicit(fx):
    fx.add_user(ALICE)
    fx.start()
    body = big_body()
    path = os.path.join(fx.dir, "big.eml")
    with open(path, "wb") as f:
        f.write(body)
    p = fx.run_tool(["curl", "-sS", "-v", "--ssl-reqd", "-k", "--max-time", "60",
                     "smtps://127.0.0.1:%d" % fx.port_implicit,
                     "--user", "%s:%s" % (ALICE, PASSWORD), "--mail-from", ALICE,
                     "--mail-rcpt", "someone@example.net", "--upload-file", path])
    check(p.returncode == 0, "curl exited %d:\n%s" % (p.returncode, p.stderr[-3000:]))
    check("< 250 2.0.0 Ok: queued as QID1" in p.stderr,
          "curl did not see the backend's queue id:\n%s" % p.stderr[-2000:])
    check(fx.message(1) == body, "body differs (sent %d, got %d octets)"
          % (len(body), len(fx.message(1))))


def test_curl_starttls_plain(fx):
    fx.add_user(ALICE)
    fx.start()
    body = b"From: alice@example.com\r\nSubject: curl\r\n\r\n.leading\r\n..two\r\n.\r\nend\r\n"
    path = os.path.join(fx.dir, "m.eml")
    with open(path, "wb") as f:
        f.write(body)
    p = fx.run_tool(["curl", "-sS", "-v", "--ssl-reqd", "-k", "--max-time", "30",
                     "smtp://127.0.0.1:%d" % fx.port_starttls,
                     "--user", "%s:%s" % (ALICE, PASSWORD), "--login-options", "AUTH=PLAIN",
                     "--mail-from", ALICE, "--mail-rcpt", "a@example.net",
                     "--mail-rcpt", "b@example.net", "--upload-file", path])
    check(p.returncode == 0, "curl exited %d:\n%s" % (p.returncode, p.stderr[-3000:]))
    check("> STARTTLS" in p.stderr, "curl did not use STARTTLS:\n%s" % p.stderr[-2000:])
    check(fx.message(1) == body, "body differs: %r" % fx.message(1))
    raw = fx.backend_raw()
    check(b"RCPT TO:<a@example.net>" in raw and b"RCPT TO:<b@example.net>" in raw,
          "recipients missing: %r" % raw[:500])


def test_curl_without_tls_refused_on_starttls_port(fx):
    fx.add_user(ALICE)
    fx.start()
    path = os.path.join(fx.dir, "m.eml")
    with open(path, "wb") as f:
        f.write(b"Subject: x\r\n\r\nx\r\n")
    p = fx.run_tool(["curl", "-sS", "-v", "--max-time", "30",
                     "smtp://127.0.0.1:%d" % fx.port_starttls,
                     "--user", "%s:%s" % (ALICE, PASSWORD), "--mail-from", ALICE,
                     "--mail-rcpt", "a@example.net", "--upload-file", path])
    check(p.returncode != 0, "curl delivered without TLS:\n%s" % p.stderr[-2000:])
    check(fx.messages() == {}, "a message reached the backend without TLS")
