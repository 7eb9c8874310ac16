"""Response direction (issue 5 item 2): a backend that sends extra, early, duplicated or
malformed replies never makes the gateway answer a client command with a reply meant for
another. By default the gateway talks to the backend in lock-step (one command
outstanding); with `[backend] pipelining = true` a group the client pipelined that ends
with DATA goes in one write (tests at the end). Either way it closes the backend on any
byte it is not waiting for.

The backend here is a small scripted SMTP server in this file: it answers the gateway's
handshake (and its start-up capability probe) normally and misbehaves only on the
commands a test names. It records, per connection, the commands it received and whether
the gateway closed the connection.
"""

import select
import socket
import threading
import time

from harness import check

ALICE = "alice@example.com"
EHLO = (b"250-backend.test\r\n250-PIPELINING\r\n250-SIZE 104857600\r\n"
        b"250 ENHANCEDSTATUSCODES\r\n")
NORMAL = {"MAIL": b"250 2.1.0 Ok\r\n", "RCPT": b"250 2.1.5 Ok\r\n",
          "DATA": b"354 End data with <CR><LF>.<CR><LF>\r\n", "RSET": b"250 2.0.0 Ok\r\n",
          "NOOP": b"250 2.0.0 Ok\r\n", "QUIT": b"221 2.0.0 Bye\r\n"}


class Conn:
    def __init__(self):
        self.commands = []
        self.unasked = []  # commands that arrived before the previous reply was sent
        self.closed_by_peer = threading.Event()  # the gateway closed its side


class ScriptedBackend:
    """`script` maps a command verb (or "END" for the end of data, "GREETING" for the
    banner) to the bytes to send instead of the normal reply; a list of byte strings is
    sent as separate TCP segments with a short pause between them."""

    def __init__(self, port, script=None, pause=0.005):
        self.script = script or {}
        self.pause = pause
        self.conns = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            conn = Conn()
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(s, conn), daemon=True).start()

    def _send(self, s, what, conn=None, verb=None, buf=b""):
        pieces = what if isinstance(what, (list, tuple)) else [what]
        for i, piece in enumerate(pieces):
            if conn is not None and i == len(pieces) - 1 and (
                    b"\n" in buf or select.select([s], [], [], 0)[0]):
                conn.unasked.append(verb)  # the gateway did not wait for this reply
            if piece:
                s.sendall(piece)
            if len(pieces) > 1:
                time.sleep(self.pause)

    def _serve(self, s, conn):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # segments stay apart
        buf = b""
        in_data = False
        try:
            self._send(s, self.script.get("GREETING", b"220 backend.test ESMTP\r\n"))
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    conn.closed_by_peer.set()
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line = line.rstrip(b"\r").decode("latin-1")
                    if in_data:
                        if line == ".":
                            in_data = False
                            conn.commands.append("END")
                            self._send(s, self.script.get("END", b"250 2.0.0 Ok: queued\r\n"))
                        continue
                    verb = line.split(" ", 1)[0].upper()
                    conn.commands.append(verb)
                    if verb in ("EHLO", "HELO"):
                        self._send(s, self.script.get(verb, EHLO))
                        continue
                    answer = self.script.get(verb, NORMAL.get(verb, b"502 5.5.1 ?\r\n"))
                    self._send(s, answer, conn, verb, buf)
                    if verb == "DATA" and b"".join(
                            answer if isinstance(answer, (list, tuple)) else [answer]
                    ).startswith(b"354"):
                        in_data = True
                    elif verb == "QUIT":
                        return
        except OSError:
            conn.closed_by_peer.set()
        finally:
            s.close()

    def session_conn(self, timeout=5):
        """The connection that carried a MAIL (not the start-up probe)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for c in self.conns:
                if "MAIL" in c.commands:
                    return c
            time.sleep(0.02)
        raise AssertionError("no backend connection saw MAIL: %r"
                             % [c.commands for c in self.conns])


def _start(fx, script):
    fx.add_user(ALICE)
    backend = ScriptedBackend(fx.backend_port, script)
    fx._track(backend, backend.close)
    fx.start(backend=False)
    return backend


def _out_of_step(fx, backend, d, reply):
    reply.expect(421, "4.4.2")
    check(d.closed_within(5), "the gateway kept the client connection open")
    conn = backend.session_conn()
    check(conn.closed_by_peer.wait(5), "the gateway did not close the backend connection")
    fx.wait_event("backend.error", lambda e: e.get("failure") == "protocol")
    return conn


def test_extra_reply_after_mail_closes_the_backend(fx):
    # The extra "250" would be taken for the RCPT's reply by a pipelining proxy.
    backend = _start(fx, {"MAIL": b"250 2.1.0 Ok\r\n250 2.1.5 injected\r\n"})
    d = fx.session("starttls")
    d.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.net>\r\n")
    first = d.reply()
    check("injected" not in first.text, "the injected reply reached the client: %r" % first)
    conn = _out_of_step(fx, backend, d, first)
    check("RCPT" not in conn.commands, "RCPT went to an out-of-step backend: %r"
          % conn.commands)


def test_reply_before_any_command_closes_the_backend(fx):
    # Sent with the greeting, before the gateway asked anything.
    backend = _start(fx, {"GREETING": b"220 backend.test ESMTP\r\n250 2.1.0 early\r\n"})
    d = fx.session("starttls")
    r = d.cmd("MAIL FROM:<alice@example.com>")
    check("early" not in r.text, "the early reply reached the client: %r" % r)
    r.expect(421, "4.4.2")
    check(d.closed_within(5), "the gateway kept the client connection open")
    ev = fx.wait_event("backend.error", lambda e: e.get("failure") == "protocol")
    check("more than the awaited" in ev[0]["reason"], "reason: %r" % ev[0])
    check(all("MAIL" not in c.commands for c in backend.conns),
          "MAIL went to an out-of-step backend")


def test_unsolicited_reply_while_idle_ends_the_session(fx):
    # A complete transaction, then the backend speaks while nothing was asked.
    backend = _start(fx, {"END": [b"250 2.0.0 Ok: queued\r\n", b"250 2.0.0 surprise\r\n"]})
    backend.pause = 0.3
    d = fx.session("starttls")
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("RCPT TO:<bob@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: x\r\n\r\nhello\r\n.\r\n")
    d.reply().expect(250, "2.0.0", "queued")
    r = d.reply()  # unsolicited, from the gateway, not the backend's "surprise"
    check("surprise" not in r.text, "the unsolicited reply reached the client: %r" % r)
    _out_of_step(fx, backend, d, r)


def test_duplicated_reply_to_rcpt_closes_the_backend(fx):
    backend = _start(fx, {"RCPT": b"250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"})
    d = fx.session("starttls")
    d.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.net>\r\n"
           "RCPT TO:<carol@example.net>\r\n")
    d.reply().expect(250, "2.1.0")
    conn = _out_of_step(fx, backend, d, d.reply())
    check(conn.commands.count("RCPT") == 1, "a second RCPT went to the backend: %r"
          % conn.commands)
    check("DATA" not in conn.commands, "DATA went to the backend: %r" % conn.commands)


def test_354_to_a_command_that_takes_no_data_closes_the_backend(fx):
    # A reply must fit its command: "go ahead" can only answer DATA.
    backend = _start(fx, {"MAIL": b"354 go ahead\r\n"})
    d = fx.session("starttls")
    r = d.cmd("MAIL FROM:<alice@example.com>")
    check(r.code != 354, "354 relayed as the answer to MAIL: %r" % r)
    _out_of_step(fx, backend, d, r)
    ev = fx.events("backend.error")
    check(any("takes no data" in e.get("reason", "") for e in ev), "reason: %r" % ev)


def test_malformed_multiline_reply_closes_the_backend(fx):
    backend = _start(fx, {"MAIL": b"250-2.1.0 first\r\n251 2.1.0 other code\r\n"})
    d = fx.session("starttls")
    r = d.cmd("MAIL FROM:<alice@example.com>")
    check("other code" not in r.text and "first" not in r.text,
          "the malformed reply reached the client: %r" % r)
    _out_of_step(fx, backend, d, r)
    ev = fx.events("backend.error")
    check(any("code changes" in e.get("reason", "") for e in ev), "reason: %r" % ev)


def test_reply_line_without_code_closes_the_backend(fx):
    backend = _start(fx, {"RCPT": b"250-2.1.5 Ok\r\nhello there\r\n"})
    d = fx.session("starttls")
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    _out_of_step(fx, backend, d, d.cmd("RCPT TO:<bob@example.net>"))


def test_early_reply_during_data_is_not_relayed(fx):
    # The backend answers 554 right after its 354, before the message ended. The
    # gateway must not relay it (nor anything as the answer to the client's "."):
    # the message is refused with 451 4.4.2 and the session goes on.
    backend = _start(fx, {"DATA": b"354 go ahead\r\n554 5.7.1 rejected early\r\n"})
    d = fx.session("starttls")
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("RCPT TO:<bob@example.net>").expect(250)
    r = d.cmd("DATA")
    if r.code == 354:
        d.send("Subject: x\r\n\r\nhello\r\n.\r\n")
        r = d.reply()
    check("rejected early" not in r.text, "the early reply reached the client: %r" % r)
    r.expect(451, "4.4.2")
    conn = backend.session_conn()
    check(conn.closed_by_peer.wait(5), "the gateway did not close the backend connection")
    check("END" not in conn.commands, "the end of data went to the backend: %r"
          % conn.commands)
    fx.wait_event("backend.error", lambda e: e.get("failure") == "protocol")
    d.cmd("NOOP").expect(250)  # the client session survives


def test_early_reply_in_the_middle_of_data(fx):
    # The 354 and a 554 in separate segments: the 554 arrives while the client is
    # still sending the body.
    backend = _start(fx, {"DATA": [b"354 go ahead\r\n", b"554 5.7.1 stop now\r\n"]})
    backend.pause = 0.3
    d = fx.session("starttls")
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("RCPT TO:<bob@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: x\r\n\r\nfirst part\r\n")
    time.sleep(0.8)
    d.send("second part\r\n.\r\n")
    r = d.reply()
    check("stop now" not in r.text, "the early reply reached the client: %r" % r)
    r.expect(451, "4.4.2")
    conn = backend.session_conn()
    check(conn.closed_by_peer.wait(5), "the gateway did not close the backend connection")
    check("END" not in conn.commands, "the end of data went to the backend")


def test_reply_split_across_many_segments_is_relayed_whole(fx):
    text = b"250-2.1.0 first line\r\n250-2.1.0 second line\r\n250 2.1.0 Ok\r\n"
    pieces = [text[i:i + 1] for i in range(len(text))]  # one byte per segment
    backend = _start(fx, {"MAIL": pieces, "END": [b"25", b"0 2.0.", b"0 Ok: q", b"ueued\r\n"]})
    d = fx.session("starttls")
    r = d.cmd("MAIL FROM:<alice@example.com>").expect(250, "2.1.0")
    check(r.lines == ["2.1.0 first line", "2.1.0 second line", "2.1.0 Ok"],
          "multi-line reply: %r" % r)
    d.cmd("RCPT TO:<bob@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: x\r\n\r\nhello\r\n.\r\n")
    d.reply().expect(250, "2.0.0", "queued")
    d.cmd("NOOP").expect(250)
    conn = backend.session_conn()
    check(not conn.closed_by_peer.is_set(), "the gateway closed a well-behaved backend")
    check(not fx.events("backend.error"), "backend.error: %r" % fx.events("backend.error"))


def test_pipelined_commands_go_to_the_backend_one_at_a_time(fx):
    # Lock-step: even though the backend offers PIPELINING, the gateway sends the next
    # command only after the previous reply. The backend answers MAIL late; RCPT must
    # not have arrived before that answer.
    backend = _start(fx, {"MAIL": [b"", b"250 2.1.0 Ok\r\n"]})
    backend.pause = 0.3
    d = fx.session("starttls")
    d.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n")
    d.reply().expect(250, "2.1.0")
    d.reply().expect(250, "2.1.5")
    d.reply().expect(354)
    d.send("Subject: x\r\n\r\nhello\r\n.\r\n")
    d.reply().expect(250, "2.0.0", "queued")
    conn = backend.session_conn()
    check(conn.commands[-4:] == ["MAIL", "RCPT", "DATA", "END"], "commands: %r" % conn.commands)
    check(conn.unasked == [], "commands sent before the previous reply: %r" % conn.unasked)


# ---- [backend] pipelining = true: a group the client pipelined, ending with DATA, goes
# to the backend in one write; everything else stays in lock-step.

PIPELINING_ON = {"backend": {"pipelining": True}}


def _start_pipelining(fx, script):
    fx.add_user(ALICE)
    backend = ScriptedBackend(fx.backend_port, script)
    fx._track(backend, backend.close)
    fx.start(PIPELINING_ON, backend=False)
    return backend


def _group_after_warm_up(fx, script, pause=None, group=("MAIL", "RCPT", "DATA")):
    """A pipelining gateway, one normal transaction, then `script` in force and the
    client's pipelined `group` sent; returns (backend, session)."""
    backend = _start_pipelining(fx, {})
    d = fx.session("starttls")
    _warm(d)
    backend.script.update(script)
    if pause is not None:
        backend.pause = pause
    lines = {"MAIL": "MAIL FROM:<alice@example.com>\r\n", "RCPT": "RCPT TO:<bob@example.net>\r\n",
             "RCPT-NOBODY": "RCPT TO:<nobody@example.net>\r\n", "DATA": "DATA\r\n"}
    d.send("".join(lines[verb] for verb in group))
    return backend, d


def _warm(d):
    """A first transaction, so the backend connection is up (and its PIPELINING known)
    before the group under test: the first group of a session waits for the connection."""
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("RCPT TO:<bob@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: warm\r\n\r\nwarm\r\n.\r\n")
    d.reply().expect(250, "2.0.0", "queued")


def test_pipelining_on_sends_the_group_in_one_write(fx):
    # MAIL is answered late: with pipelining, RCPT and DATA are at the backend already.
    backend, d = _group_after_warm_up(fx, {"MAIL": [b"", b"250 2.1.0 Ok\r\n"]}, pause=0.3)
    d.reply().expect(250, "2.1.0")
    d.reply().expect(250, "2.1.5")
    d.reply().expect(354)
    d.send("Subject: x\r\n\r\nhello\r\n.\r\n")
    d.reply().expect(250, "2.0.0", "queued")
    d.cmd("NOOP").expect(250)
    conn = backend.session_conn()
    check(conn.commands[-4:] == ["MAIL", "RCPT", "DATA", "END"], "commands: %r" % conn.commands)
    # Replying to MAIL and to RCPT, the backend already had the next command.
    check(conn.unasked == ["MAIL", "RCPT"], "not pipelined: %r" % conn.unasked)
    check(not fx.events("backend.error"), "backend.error: %r" % fx.events("backend.error"))


def test_pipelining_on_group_without_data_stays_lock_step(fx):
    backend, d = _group_after_warm_up(fx, {"MAIL": b"250 2.1.0 Ok\r\n250 2.1.5 injected\r\n"},
                                      group=("MAIL", "RCPT"))
    first = d.reply()
    check("injected" not in first.text, "the injected reply reached the client: %r" % first)
    conn = _out_of_step(fx, backend, d, first)
    check(conn.commands.count("RCPT") == 1, "the second RCPT went to the backend: %r"
          % conn.commands)


def test_pipelining_on_shifted_replies_are_never_relayed(fx):
    # An extra reply after MAIL, in a segment of its own: it would be taken for the
    # RCPT's answer. The real RCPT answer then lands on DATA (a 250 cannot answer DATA)
    # or arrives with DATA's (more replies than awaited): either way the backend is out
    # of step before any reply of the group reaches the client or any content leaves.
    backend, d = _group_after_warm_up(
        fx, {"MAIL": [b"250 2.1.0 Ok\r\n", b"250 2.1.5 injected\r\n"]}, pause=0.3)
    r = d.reply()
    check("injected" not in r.text, "the injected reply reached the client: %r" % r)
    conn = _out_of_step(fx, backend, d, r)
    check(conn.commands.count("END") == 1, "a second end of data went to the backend: %r"
          % conn.commands)
    ev = fx.events("backend.error")
    check(any("DATA" in e.get("reason", "") or "more than the awaited" in e.get("reason", "")
              for e in ev), "reason: %r" % ev)


def test_pipelining_on_354_without_an_accepted_recipient_is_out_of_step(fx):
    # RFC 2920: with no accepted recipient the backend must refuse the pipelined DATA.
    # One that says 354 anyway gets nothing of the message.
    backend, d = _group_after_warm_up(fx, {"RCPT": b"550 5.1.1 no such user\r\n"},
                                      group=("MAIL", "RCPT-NOBODY", "DATA"))
    r = d.reply()
    check(r.code != 354, "354 relayed without an accepted recipient: %r" % r)
    conn = _out_of_step(fx, backend, d, r)
    check(conn.commands.count("END") == 1, "content went to the backend: %r" % conn.commands)
    ev = fx.events("backend.error")
    check(any("without an accepted recipient" in e.get("reason", "") for e in ev),
          "reason: %r" % ev)


def test_pipelining_on_refused_recipients_get_the_backends_answer_to_data(fx):
    backend, d = _group_after_warm_up(
        fx, {"RCPT": b"550 5.1.1 no such user\r\n",
             "DATA": b"554 5.5.1 Error: no valid recipients\r\n"},
        group=("MAIL", "RCPT-NOBODY", "DATA"))
    d.reply().expect(250, "2.1.0")
    d.reply().expect(550, "5.1.1")
    d.reply().expect(554, "5.5.1")
    d.cmd("RSET").expect(250)
    d.cmd("NOOP").expect(250)
    conn = backend.session_conn()
    check(not conn.closed_by_peer.is_set(), "the gateway closed a well-behaved backend")
