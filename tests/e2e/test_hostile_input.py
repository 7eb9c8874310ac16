"""Hostile input (issue 5, item 3): control characters, NUL and 8-bit bytes in commands,
a 10 MB line without a newline, a thousand pipelined junk commands and over-long DATA
text lines. Each test checks what the client got, what the backend received byte for
byte, and where it matters that the gateway's memory stayed bounded (VmRSS/VmHWM from
/proc) and that other sessions go on.
"""

import glob
import os
import re
import socket
import threading
import time

from harness import IO_TIMEOUT, PASSWORD, check, ehlo_caps

ALICE = "alice@example.com"
RCPT = "someone@example.net"
TEN_MB = 10 * 1024 * 1024
# Allowed growth of the gateway's peak and current resident memory while it is fed
# 10 MB: a bounded reader keeps at most a few 64 KiB buffers per session.
MEMORY_SLACK_KB = 4 * 1024

BAD_COMMANDS = [
    b"EHLO a\x00b",
    b"EHLO client\x01.example",
    b"HELO cli\xc3\xa9nt.example",
    b"MAIL FROM:<a\x00@example.com>",
    b"RCPT TO:<someone@example.net>\x1b[2J",
    b"AUTH PLAIN \x00AGFsaWNl",
    b"AUTH PLAIN \x80\x80\x80\x80",
    b"XYZZY \x00",
    b"NOOP \x7f",
    b"\x00\x00\x00",
    b"VRFY j\xc3\xb6rg",
    b"\xff\xfe",
]


def memory_kb(fx):
    """The gateway's {VmRSS, VmHWM} in KiB."""
    out = {}
    with open("/proc/%d/status" % fx.gateway.pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def check_memory_bounded(fx, before, what):
    after = memory_kb(fx)
    for key in ("VmHWM", "VmRSS"):
        grew = after[key] - before[key]
        check(grew < MEMORY_SLACK_KB, "%s: gateway %s grew by %d KiB (%d -> %d)"
              % (what, key, grew, before[key], after[key]))
    return after


def conn_files(fx):
    return sorted(glob.glob(os.path.join(fx.mail_dir, "conn-*.raw")),
                  key=lambda p: int(re.search(r"conn-(\d+)", p).group(1)))


def last_conn_raw(fx):
    files = conn_files(fx)
    check(files, "the backend has no connection")
    with open(files[-1], "rb") as f:
        return f.read()


def wait_backend_ready(fx, count):
    """Waits for the session's own backend connection (number `count`, after the start-up
    probe) to have had its EHLO; returns its bytes."""
    fx.wait_for(lambda: len(conn_files(fx)) >= count and b"EHLO" in last_conn_raw(fx), 5,
                "the session's backend connection did not open")
    time.sleep(0.2)
    return last_conn_raw(fx)


def start(fx, overrides=None, **kwargs):
    # No periodic probes: the only backend connections are the start-up probe and the
    # sessions', so each session's bytes are in a file of their own.
    cfg = {"backend": {"probe_interval": "0s"}}
    for k, v in (overrides or {}).items():
        cfg.setdefault(k, {}).update(v)
    fx.start(cfg, **kwargs)


def warm_up(fx):
    """One whole session, so that what any session allocates once is in the baseline."""
    d = fx.session("none")
    deliver(d)
    d.cmd("QUIT").expect(221)
    fx.wait_for(lambda: fx.messages(), 5, "warm-up message not delivered")


def deliver(d, body=b"Subject: ok\r\n\r\nfine\r\n"):
    d.cmd("MAIL FROM:<%s>" % ALICE).expect(250)
    d.cmd("RCPT TO:<%s>" % RCPT).expect(250)
    d.cmd("DATA").expect(354)
    d.send(body + b".\r\n")
    return d.reply().expect(250)


class Flood:
    """Sends `total` bytes of `byte` (then `then`) in 64 KiB writes while a thread reads
    what the gateway answers: until it closes, or with `one_reply` until one reply line
    is in. A reader running all along keeps a reply sent just before the gateway's close
    from being lost to the TCP reset that closing with unread input causes."""

    def __init__(self, dialog, total, byte=b"a", then=b"", one_reply=False):
        self.d = dialog
        self.one_reply = one_reply
        self.received = dialog.buf
        dialog.buf = b""
        self.closed = False
        self.sent = 0
        reader = threading.Thread(target=self._read, daemon=True)
        reader.start()
        chunk = byte * 65536
        try:
            while self.sent < total:
                n = min(len(chunk), total - self.sent)
                dialog.sock.sendall(chunk[:n])
                self.sent += n
            dialog.sock.sendall(then)
        except OSError:
            pass  # the gateway closed while we were still sending
        reader.join(IO_TIMEOUT + 5)

    def _read(self):
        try:
            while not (self.one_reply and b"\r\n" in self.received):
                data = self.d.sock.recv(65536)
                if not data:
                    self.closed = True
                    return
                self.received += data
        except (ConnectionResetError, BrokenPipeError):
            self.closed = True
        except socket.timeout:
            pass


# ------------------------------------------------------------------ bad bytes


def test_control_and_8bit_bytes_in_commands_before_auth(fx):
    fx.add_user(ALICE)
    start(fx)
    raw_before = b"".join(open(p, "rb").read() for p in conn_files(fx))
    d = fx.connect("none")
    d.ehlo()
    for line in BAD_COMMANDS:
        d.send(line + b"\r\n")
        d.reply().expect(500, "5.5.2", "invalid character")
    # the session goes on, and still works
    d.cmd("NOOP").expect(250)
    d.auth_plain(ALICE, PASSWORD).expect(235)
    refused = fx.wait_for(lambda: len(fx.events("command.refused")) >= len(BAD_COMMANDS) and
                          fx.events("command.refused"), 5, "refusals not logged")
    reasons = [e["reason"] for e in refused]
    check(reasons.count("control character") == 8 and reasons.count("8-bit byte") == 4,
          "logged reasons: %r" % reasons)
    # nothing of it reached the backend: no connection but the start-up probe's before
    # AUTH, and the session's own opens with the gateway's EHLO
    raw = wait_backend_ready(fx, 2)
    check(raw == b"EHLO gw.test\r\n", "the session's backend connection got %r" % raw)
    check(b"".join(open(p, "rb").read() for p in conn_files(fx)[:-1]) == raw_before,
          "the probe's connection changed")


def test_bad_bytes_after_auth_never_reach_the_backend(fx):
    fx.add_user(ALICE)
    start(fx)
    d = fx.session("none")
    raw0 = wait_backend_ready(fx, 2)
    for line in BAD_COMMANDS[:6]:
        d.send(line + b"\r\n")
        d.reply().expect(500, "5.5.2")
    d.cmd("MAIL FROM:<%s>" % ALICE).expect(250)
    d.send(b"RCPT TO:<a\x00b@example.net>\r\n")
    d.reply().expect(500, "5.5.2")
    d.cmd("RCPT TO:<%s>" % RCPT).expect(250)
    d.cmd("DATA").expect(354)
    d.send(b"Subject: after junk\r\n\r\nbody\r\n.\r\n")
    d.reply().expect(250)
    expected = raw0 + ("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (ALICE, RCPT)).encode() \
        + b"Subject: after junk\r\n\r\nbody\r\n.\r\n"
    fx.wait_for(lambda: len(last_conn_raw(fx)) >= len(expected), 5, "backend got too little")
    check(last_conn_raw(fx) == expected, "backend received %r" % last_conn_raw(fx))
    check(fx.message(1) == b"Subject: after junk\r\n\r\nbody\r\n", "message: %r" % fx.message(1))


def test_bad_bytes_count_towards_max_bad_commands(fx):
    fx.add_user(ALICE)
    start(fx, {"limits": {"max_bad_commands": 3}})
    d = fx.connect("none")
    d.ehlo()
    for _ in range(2):
        d.send(b"EHLO \x00\r\n")
        d.reply().expect(500, "5.5.2")
    d.send(b"NOOP \xff\r\n")
    d.reply().expect(500, "5.5.2")
    d.reply().expect(421, "4.7.0")
    check(d.closed_within(3), "the gateway did not close after max_bad_commands")
    fx.wait_event("bad_commands", lambda e: e.get("count") == 3)


def test_8bit_mail_from_only_with_smtputf8_offered_and_declared(fx):
    fx.add_user(ALICE, senders=["*@example.com"])
    start(fx, backend_args=["--capability", "PIPELINING", "--capability", "8BITMIME",
                            "--capability", "SMTPUTF8"])
    d = fx.session("none")
    check("SMTPUTF8" in ehlo_caps(d.ehlo()), "SMTPUTF8 not offered")
    raw0 = wait_backend_ready(fx, 2)
    d.cmd("MAIL FROM:<j\u00f6rg@example.com>").expect(553, "5.6.7")  # not declared
    d.send(b"MAIL FROM:<\xff@example.com> SMTPUTF8\r\n")  # not UTF-8
    d.reply().expect(553, "5.1.3")
    d.cmd("MAIL FROM:<j\u00f6rg@example.com> SMTPUTF8").expect(250)
    d.cmd("RSET").expect(250)
    want = raw0 + "MAIL FROM:<j\u00f6rg@example.com> SMTPUTF8\r\nRSET\r\n".encode()
    fx.wait_for(lambda: len(last_conn_raw(fx)) >= len(want), 5, "backend got too little")
    check(last_conn_raw(fx) == want, "backend received %r" % last_conn_raw(fx))


def test_8bit_mail_from_refused_when_smtputf8_is_not_offered(fx):
    fx.add_user(ALICE, senders=["*@example.com"])
    start(fx)  # the recording backend's default has no SMTPUTF8
    d = fx.session("none")
    check("SMTPUTF8" not in ehlo_caps(d.ehlo()), "SMTPUTF8 offered")
    raw0 = wait_backend_ready(fx, 2)
    d.cmd("MAIL FROM:<j\u00f6rg@example.com>").expect(553, "5.6.7")
    d.cmd("MAIL FROM:<j\u00f6rg@example.com> SMTPUTF8").expect(555, "5.5.4")
    d.cmd("NOOP").expect(250)
    time.sleep(0.3)
    check(last_conn_raw(fx) == raw0, "backend received %r" % last_conn_raw(fx))


# ------------------------------------------------------------------ 10 MB lines


def test_ten_megabyte_line_before_auth_closes_with_500(fx):
    fx.add_user(ALICE)
    start(fx)
    warm_up(fx)
    conns = len(conn_files(fx))
    before = memory_kb(fx)
    d = fx.connect("none")
    d.ehlo()
    flood = Flood(d, TEN_MB)
    check(flood.received.startswith(b"500 5.5.2 Line too long\r\n"),
          "client got %r" % flood.received[:200])
    check(flood.closed or d.closed_within(5), "the gateway did not close the connection")
    fx.wait_event("line_too_long", lambda e: e.get("phase") == "command")
    check_memory_bounded(fx, before, "10 MB line before AUTH")
    check(len(conn_files(fx)) == conns, "the flood opened a backend connection")
    # the next session works
    d2 = fx.session("none")
    deliver(d2)


def authenticated_session_with_baseline(fx):
    """Starts the gateway, warms it up and measures its memory, then opens an
    authenticated session whose backend connection is ready; returns (memory before,
    the session, the backend's raw bytes so far)."""
    fx.add_user(ALICE)
    start(fx)
    warm_up(fx)
    before = memory_kb(fx)
    d = fx.session("none")
    return before, d, wait_backend_ready(fx, 3)


def test_ten_megabyte_line_after_auth_closes_with_500(fx):
    before, d, raw0 = authenticated_session_with_baseline(fx)
    flood = Flood(d, TEN_MB, byte=b"A")
    check(flood.received.startswith(b"500 5.5.2 Line too long\r\n"),
          "client got %r" % flood.received[:200])
    check(flood.closed or d.closed_within(5), "the gateway did not close the connection")
    # the backend saw nothing of it: the gateway ended its connection with QUIT
    fx.wait_for(lambda: last_conn_raw(fx) != raw0, 5, "backend connection not ended")
    check(last_conn_raw(fx) == raw0 + b"QUIT\r\n", "backend received %r" % last_conn_raw(fx))
    check_memory_bounded(fx, before, "10 MB line after AUTH")
    d2 = fx.session("none")
    deliver(d2)


def test_ten_megabyte_line_in_auth_exchange_closes_with_500(fx):
    fx.add_user(ALICE)
    start(fx)
    d = fx.connect("none")
    d.ehlo()
    d.cmd("AUTH LOGIN").expect(334)
    flood = Flood(d, TEN_MB, byte=b"Q")
    check(flood.received.startswith(b"500 5.5.2 Line too long\r\n"),
          "client got %r" % flood.received[:200])
    fx.wait_event("line_too_long", lambda e: e.get("phase") == "auth")


def test_ten_megabyte_line_in_data_refuses_the_message(fx):
    before, d, raw0 = authenticated_session_with_baseline(fx)
    d.cmd("MAIL FROM:<%s>" % ALICE).expect(250)
    d.cmd("RCPT TO:<%s>" % RCPT).expect(250)
    d.cmd("DATA").expect(354)
    d.send(b"Subject: long\r\n\r\n")
    flood = Flood(d, TEN_MB, byte=b"z", then=b"\r\n.\r\n", one_reply=True)
    check(flood.received == b"554 5.6.0 Message has a text line longer than the limit\r\n",
          "client got %r" % flood.received[:200])
    check_memory_bounded(fx, before, "10 MB line in DATA")
    # the backend got the transaction, the header and at most max_line_length (64 KiB)
    # of the line, never an end of data: its connection was closed instead
    head = raw0 + ("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (ALICE, RCPT)).encode() \
        + b"Subject: long\r\n\r\n"
    raw = last_conn_raw(fx)
    check(raw.startswith(head), "backend received %r" % raw[:300])
    tail = raw[len(head):]
    check(tail == b"z" * len(tail) and len(tail) <= 65536,
          "backend got %d octets after the header: %r" % (len(tail), tail[-50:]))
    fx.wait_event("message.aborted", lambda e: "max_line_length" in e.get("reason", ""))
    check(len(fx.messages()) == 1, "a message was delivered: %r" % sorted(fx.messages()))
    # the session goes on: the next message is delivered on a new backend connection
    deliver(d, b"Subject: next\r\n\r\nshort\r\n")
    check(fx.message(2) == b"Subject: next\r\n\r\nshort\r\n", "message: %r" % fx.message(2))


# ------------------------------------------------------------------ DATA line bound


def test_data_lines_up_to_max_line_length_pass_unchanged(fx):
    fx.add_user(ALICE)
    start(fx, {"limits": {"max_line_length": 2000}})
    d = fx.session("none")
    raw0 = wait_backend_ready(fx, 2)
    at_limit = b"x" * 2000
    dotted = b"." + b"y" * 1999  # 2000 octets decoded; 2001 on the wire, stuffed
    body = b"Subject: long lines\r\n\r\n" + at_limit + b"\r\n." + dotted + b"\r\nend\r\n"
    d.cmd("MAIL FROM:<%s>" % ALICE).expect(250)
    d.cmd("RCPT TO:<%s>" % RCPT).expect(250)
    d.cmd("DATA").expect(354)
    d.send(body + b".\r\n")
    d.reply().expect(250)
    check(fx.message(1) == b"Subject: long lines\r\n\r\n" + at_limit + b"\r\n" + dotted +
          b"\r\nend\r\n", "message not passed through unchanged")
    want = raw0 + ("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (ALICE, RCPT)).encode() \
        + body + b".\r\n"
    fx.wait_for(lambda: len(last_conn_raw(fx)) >= len(want), 5, "backend got too little")
    check(last_conn_raw(fx) == want, "backend bytes differ from the client's")


def test_data_line_over_max_line_length_is_refused(fx):
    fx.add_user(ALICE)
    start(fx, {"limits": {"max_line_length": 2000}})
    d = fx.session("none")
    raw0 = wait_backend_ready(fx, 2)
    d.cmd("MAIL FROM:<%s>" % ALICE).expect(250)
    d.cmd("RCPT TO:<%s>" % RCPT).expect(250)
    d.cmd("DATA").expect(354)
    start_of_message = b"Subject: too long\r\n\r\nfirst\r\n"
    d.send(start_of_message + b"w" * 2001 + b"\r\nlast\r\n.\r\n")
    d.reply().expect(554, "5.6.0", "text line longer than the limit")
    raw = last_conn_raw(fx)
    head = raw0 + ("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (ALICE, RCPT)).encode()
    content = raw[len(head):]
    check(raw.startswith(head), "backend received %r" % raw[:300])
    # At most the part of the message before the limit was crossed (nothing, when it
    # arrived in one read), never the 2001st octet of the line nor the end of data.
    allowed = start_of_message + b"w" * 2000
    check(allowed.startswith(content), "backend got message bytes: %r" % content[-100:])
    fx.wait_event("message.aborted")
    check(not fx.messages(), "a message was delivered")
    deliver(d)
    check(fx.message(1) == b"Subject: ok\r\n\r\nfine\r\n", "next message: %r" % fx.message(1))


# ------------------------------------------------------------------ pipelined junk


def test_thousand_pipelined_junk_commands_close_only_that_session(fx):
    fx.add_user(ALICE)
    start(fx)
    warm_up(fx)
    good = fx.session("none")
    before = memory_kb(fx)
    junk = fx.connect("none")
    junk.send(b"".join(b"JUNK%d \x00 %s\r\n" % (i, b"x" * 40) if i % 2 else
                       b"XYZZY %d\r\n" % i for i in range(1000)))
    closed = junk.closed_within(5)
    got = junk.leftover
    check(closed, "the junk session was not closed")
    lines = got.split(b"\r\n")
    check(lines[-1] == b"", "reply not complete: %r" % got[-80:])
    lines = lines[:-1]
    check(len(lines) == 21, "expected 20 errors and a 421, got %d lines" % len(lines))
    check(all(re.match(rb"500 5\.5\.[12] ", l) for l in lines[:20]), "errors: %r" % lines[:20])
    check(lines[20] == b"421 4.7.0 Too many bad commands, closing connection",
          "last: %r" % lines[20])
    check_memory_bounded(fx, before, "1000 pipelined junk commands")
    # the other session never noticed
    deliver(good)
    good.cmd("NOOP").expect(250)
    check(fx.message(2) == b"Subject: ok\r\n\r\nfine\r\n", "good session's message")
