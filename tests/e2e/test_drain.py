"""SIGTERM/SIGINT drain: stop accepting, let sessions finish up to [server] drain_timeout,
then 421 for the rest (a message in DATA is abandoned by closing the backend connection,
never by an end-of-data of ours), and exit 0."""

import signal
import socket
import subprocess
import time

from harness import PASSWORD, check, free_ports

ALICE = "alice@example.com"


def _in_data(fx):
    """An authenticated session that has sent half a message after 354."""
    d = fx.session("starttls")
    d.cmd("MAIL FROM:<%s>" % ALICE).expect(250)
    d.cmd("RCPT TO:<someone@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: drain\r\n\r\nfirst half\r\n")
    return d


def _refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def _exit_code(fx, timeout):
    try:
        fx.gateway.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    fx.stopped = True  # the harness must not signal it again
    return fx.gateway.returncode


def test_drain_lets_a_message_in_data_finish(fx):
    fx.add_user(ALICE)
    (mport,) = free_ports(1)
    fx.metrics_port = mport
    fx.start({"server": {"drain_timeout": "20s"},
              "metrics": {"address": "127.0.0.1:%d" % mport}})
    d = _in_data(fx)
    idle = fx.session("implicit")
    started = time.monotonic()
    fx.gateway.send_signal(signal.SIGTERM)
    fx.wait_event("shutdown")
    # New connections are refused at once; an idle session is told 421 at once.
    fx.wait_for(lambda: _refused(fx.port_starttls) and _refused(fx.port_implicit), 5,
                "listeners still accept after SIGTERM")
    idle.reply().expect(421, "4.3.2")
    # The metrics endpoint stays up and says why the gateway is not ready.
    p = fx.run_tool(["curl", "-sS", "-w", " %{http_code}", "http://127.0.0.1:%d/readyz" % mport])
    check(p.stdout == "not ready: draining\n 503", "readyz while draining: %r" % p.stdout)
    time.sleep(0.5)
    check(fx.gateway.poll() is None, "gateway exited with a message in DATA")
    d.send("second half\r\n.\r\n")
    d.reply().expect(250)
    # Its transaction is done: the session is told 421 without waiting for a command.
    d.reply().expect(421, "4.3.2")
    code = _exit_code(fx, 10)
    check(code == 0, "exit code after drain: %r" % code)
    check(time.monotonic() - started < 10, "drain waited for the timeout")
    body = fx.message(1)
    check(b"first half\r\nsecond half\r\n" in body, "message at the backend: %r" % body)
    check(not fx.events("shutdown.timeout"), "drain timed out: %r" % fx.events("shutdown.timeout"))


def test_drain_timeout_answers_421_mid_data(fx):
    fx.add_user(ALICE)
    fx.start({"server": {"drain_timeout": "1s"}})
    d = _in_data(fx)
    time.sleep(0.3)  # the half message reaches the backend
    started = time.monotonic()
    fx.gateway.send_signal(signal.SIGTERM)
    d.reply().expect(421, "4.3.2")
    waited = time.monotonic() - started
    check(0.8 <= waited < 4, "421 came after %.1f s with drain_timeout = 1s" % waited)
    check(d.closed_within(3), "session not closed after 421")
    code = _exit_code(fx, 10)
    check(code == 0, "exit code after the drain timeout: %r" % code)
    # The backend saw the start of the message but no end of data: nothing delivered.
    raw = fx.backend_raw()
    check(b"first half" in raw, "backend never saw the message start: %r" % raw[-300:])
    check(b"\r\n.\r\n" not in raw,
          "the gateway ended the data itself: %r" % raw[-300:])
    time.sleep(0.3)
    check(not fx.messages(), "a message was delivered: %r" % fx.messages())
    aborted = [e for e in fx.events("message.aborted") if e.get("reason") == "drain_timeout"]
    check(len(aborted) == 1 and aborted[0].get("session"), "message.aborted: %r" % aborted)
    check(fx.events("shutdown.timeout"), "no shutdown.timeout event")


def test_sigint_drains_like_sigterm(fx):
    fx.add_user(ALICE)
    fx.start({"server": {"drain_timeout": "30s"}})
    c = fx.smtp("starttls", login=(ALICE, PASSWORD))
    c.sendmail(ALICE, ["someone@example.net"], b"Subject: x\r\n\r\nbefore\r\n")
    fx.gateway.send_signal(signal.SIGINT)
    code = _exit_code(fx, 10)
    check(code == 0, "exit code after SIGINT: %r" % code)
    ev = fx.events("shutdown")
    check(ev and ev[0].get("signal") == "SIGINT" and ev[0].get("drain_timeout_ms") == 30000,
          "shutdown event: %r" % ev)
