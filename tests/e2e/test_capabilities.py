"""Capability discovery: the gateway offers clients only what the backends support, and
passes MAIL/RCPT parameters on only when the backend takes them."""

import os
import subprocess
import sys
import time

from harness import BACKEND_SCRIPT, DEFAULT_MESSAGE_SIZE, check, ehlo_caps, free_ports

ALICE = "alice@example.com"
FULL = ["PIPELINING", "SIZE 104857600", "8BITMIME", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES"]


def caps_args(lines):
    out = []
    for line in lines:
        out += ["--capability", line]
    return out


def extra_backend(fx, *args, port=None):
    """Another recording backend on its own (or the given) port and folder; stopped at
    teardown. Returns (port, folder)."""
    port = port or free_ports(1)[0]
    folder = os.path.join(fx.dir, "backend-%d" % port)
    log = open(os.path.join(fx.dir, "backend-%d.log" % port), "wb")
    p = subprocess.Popen([sys.executable, BACKEND_SCRIPT, "--dir", folder, "--port", str(port),
                          *args], stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    check(line.startswith("READY "), "extra backend did not start: %r" % line)

    def stop():
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        p.stdout.close()
        log.close()
    fx.closers.append(stop)
    return port, folder


def _ehlo(fx, kind="none"):
    d = fx.connect(kind)
    return d, ehlo_caps(d.ehlo())


def test_ehlo_offers_only_what_the_backend_supports(fx):
    fx.start(backend_args=caps_args(["PIPELINING", "SIZE 20000", "DSN", "SMTPUTF8"]))
    _, caps = _ehlo(fx)
    check(caps.get("SIZE") == ["20000"], "SIZE should be the backend's smaller limit: %r" % caps)
    for kw in ("PIPELINING", "DSN", "SMTPUTF8"):
        check(kw in caps, "%s missing: %r" % (kw, caps))
    for kw in ("8BITMIME", "ENHANCEDSTATUSCODES"):
        check(kw not in caps, "%s advertised though the backend lacks it: %r" % (kw, caps))
    probe = fx.events("backend.probe")[0]
    check(probe["result"] == "ok" and "SIZE=20000" in probe["capabilities"], "probe: %r" % probe)


def test_size_is_the_smaller_limit(fx):
    fx.add_user(ALICE)
    fx.start({"limits": {"message_size": "16KiB"}},
             backend_args=caps_args(["PIPELINING", "SIZE 20000", "8BITMIME"]))
    _, caps = _ehlo(fx)
    check(caps.get("SIZE") == ["16384"], "gateway limit is smaller: %r" % caps)
    fx.reload({"limits": {"message_size": "1MiB"}})
    d = fx.session("none")
    check(ehlo_caps(d.ehlo()).get("SIZE") == ["20000"], "backend limit is smaller")
    d.cmd("MAIL FROM:<alice@example.com> SIZE=20001").expect(552, "5.3.4")
    d.cmd("MAIL FROM:<alice@example.com> SIZE=19000").expect(250)
    d.cmd("RCPT TO:<someone@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: big\r\n\r\n" + ("x" * 70 + "\r\n") * 400 + ".\r\n")  # ~28 KB
    d.reply().expect(552, "5.3.4")
    check(fx.messages() == {}, "an oversized message reached the backend")


def test_backend_without_size_limit_keeps_the_gateway_limit(fx):
    fx.start(backend_args=caps_args(["PIPELINING", "SIZE", "8BITMIME"]))
    _, caps = _ehlo(fx)
    check(caps.get("SIZE") == [str(DEFAULT_MESSAGE_SIZE)], "SIZE: %r" % caps)


def test_parameters_passed_on_when_supported(fx):
    fx.add_user(ALICE)
    fx.start(backend_args=caps_args(FULL))
    d = fx.session("none")
    caps = ehlo_caps(d.ehlo())
    for kw in ("8BITMIME", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES"):
        check(kw in caps, "%s not advertised: %r" % (kw, caps))
    d.cmd("MAIL FROM:<alice@example.com> BODY=8bitmime RET=hdrs ENVID=QQ+2B1 SIZE=0100 "
          "SMTPUTF8").expect(250)
    d.cmd("RCPT TO:<someone@example.net> NOTIFY=success,delay "
          "ORCPT=rfc822;someone+40example.net").expect(250)
    d.cmd("RCPT TO:<j\u00f8rn@example.net> NOTIFY=NEVER").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: dsn\r\n\r\nhi\r\n.\r\n")
    d.reply().expect(250)
    raw = fx.backend_raw()
    check(b"MAIL FROM:<alice@example.com> BODY=8BITMIME RET=HDRS ENVID=QQ+2B1 SIZE=100 "
          b"SMTPUTF8\r\n" in raw, "MAIL as forwarded: %r" % raw)
    check(b"RCPT TO:<someone@example.net> NOTIFY=SUCCESS,DELAY "
          b"ORCPT=rfc822;someone@example.net\r\n" in raw, "RCPT as forwarded: %r" % raw)
    check("RCPT TO:<j\u00f8rn@example.net> NOTIFY=NEVER\r\n".encode() in raw,
          "UTF-8 RCPT as forwarded: %r" % raw)


def test_bad_parameter_values_get_501(fx):
    fx.add_user(ALICE)
    fx.start(backend_args=caps_args(FULL))
    d = fx.session("none")
    for mail in ("MAIL FROM:<alice@example.com> RET=ALL",
                 "MAIL FROM:<alice@example.com> BODY=BINARYMIME",
                 "MAIL FROM:<alice@example.com> ENVID=a+2",
                 "MAIL FROM:<alice@example.com> SMTPUTF8=yes",
                 "MAIL FROM:<alice@example.com> RET=FULL RET=HDRS"):
        d.cmd(mail).expect(501, "5.5.4")
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    for rcpt in ("RCPT TO:<a@example.net> NOTIFY=SOMETIMES",
                 "RCPT TO:<a@example.net> NOTIFY=NEVER,SUCCESS",
                 "RCPT TO:<a@example.net> ORCPT=a@example.net"):
        d.cmd(rcpt).expect(501, "5.5.4")
    # a non-ASCII address needs SMTPUTF8 on MAIL
    d.cmd("RCPT TO:<j\u00f8rn@example.net>").expect(553, "5.6.7")
    d.cmd("RSET").expect(250)
    d.cmd("MAIL FROM:<\u00e5lice@example.com>").expect(553, "5.6.7")
    raw = fx.backend_raw()
    for word in (b"RET=ALL", b"BINARYMIME", b"SOMETIMES", "j\u00f8rn".encode()):
        check(word not in raw, "refused parameter reached the backend: %r" % word)


def test_parameters_refused_when_the_backend_lacks_them(fx):
    fx.add_user(ALICE)
    fx.start()  # the recording backend's default: no DSN, no SMTPUTF8
    d = fx.session("none")
    caps = ehlo_caps(d.ehlo())
    check("DSN" not in caps and "SMTPUTF8" not in caps, "caps: %r" % caps)
    for mail in ("MAIL FROM:<alice@example.com> RET=FULL",
                 "MAIL FROM:<alice@example.com> ENVID=x",
                 "MAIL FROM:<alice@example.com> SMTPUTF8",
                 "MAIL FROM:<alice@example.com> AUTH=<>"):
        d.cmd(mail).expect(555, "5.5.4")
    d.cmd("MAIL FROM:<alice@example.com> BODY=8BITMIME").expect(250)
    d.cmd("RCPT TO:<a@example.net> NOTIFY=NEVER").expect(555, "5.5.4")
    d.cmd("RCPT TO:<a@example.net> ORCPT=rfc822;a@example.net").expect(555, "5.5.4")
    d.cmd("RCPT TO:<a@example.net>").expect(250)
    raw = fx.backend_raw()
    check(b"RET=" not in raw and b"NOTIFY=" not in raw and b"SMTPUTF8" not in raw,
          "unsupported parameters reached the backend: %r" % raw)


def test_helo_only_backend(fx):
    fx.add_user(ALICE)
    fx.start(backend_args=["--helo-only"])
    d = fx.session("none")
    caps = ehlo_caps(d.ehlo())
    check(set(caps) == {"PIPELINING", "SIZE"},
          "an old backend: only the gateway's own PIPELINING and SIZE: %r" % caps)
    d.cmd("MAIL FROM:<alice@example.com> BODY=8BITMIME").expect(555, "5.5.4")
    d.cmd("MAIL FROM:<alice@example.com> SIZE=1000").expect(250)  # checked, not passed on
    d.cmd("RCPT TO:<someone@example.net>").expect(250)
    d.cmd("RCPT TO:<other@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: old\r\n\r\nto an old MTA\r\n.\r\n")
    d.reply().expect(250, "2.0.0", "QID1")
    raw = fx.backend_raw()
    check(b"EHLO gw.test\r\nHELO gw.test\r\nMAIL FROM:<alice@example.com>\r\n" in raw,
          "expected EHLO refused, HELO, MAIL without parameters: %r" % raw)
    probe = fx.events("backend.probe")[0]
    check(probe["capabilities"] == "HELO only", "probe: %r" % probe)


def test_capabilities_follow_a_reload(fx):
    fx.start()
    _, caps = _ehlo(fx)
    check("8BITMIME" in caps, "before reload: %r" % caps)
    port, _ = extra_backend(fx, *caps_args(["PIPELINING", "SIZE 9000"]))
    before = len(fx.events("backend.probe"))
    fx.reload({"backend": {"address": "127.0.0.1:%d" % port}})
    fx.wait_for(lambda: len(fx.events("backend.probe")) > before, 5, "no probe after reload")
    _, caps = _ehlo(fx)
    check(caps.get("SIZE") == ["9000"] and "8BITMIME" not in caps, "after reload: %r" % caps)


def test_capabilities_probed_periodically(fx):
    fx.start({"backend": {"probe_interval": "500ms"}})
    d, caps = _ehlo(fx)
    check("8BITMIME" in caps, "at start: %r" % caps)
    # The backend is replaced by one with fewer extensions on the same port.
    fx.backend.terminate()
    fx.backend.wait(timeout=5)
    fx.backend.stdout.close()
    fx.backend_log.close()
    fx.start_backend(caps_args(["PIPELINING", "SIZE 7000"]))
    fx.wait_event("backend.probe", lambda e: "SIZE=7000" in e.get("capabilities", ""),
                  timeout=10)
    _, caps = _ehlo(fx)
    check(caps.get("SIZE") == ["7000"] and "8BITMIME" not in caps, "after the probe: %r" % caps)
    # a session keeps what it was offered at its EHLO
    check(d.cmd("NOOP").code == 250, "old session broke")
    time.sleep(0.1)
