"""docs/logs.md is the log reference: every line of a session carries its session id,
every event the gateway writes is documented, levels filter, the text format is
key=value, and the fail2ban filter in conf/fail2ban matches real auth failures."""

import os
import re
import shutil
import signal
import time

from harness import HERE, PASSWORD, check

ALICE = "alice@example.com"
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
FILTER = os.path.join(ROOT, "conf", "fail2ban", "filter.d", "portcullis-auth.conf")
DOC = os.path.join(ROOT, "docs", "logs.md")
# Events logged before a session exists or outside any session.
NO_SESSION = {"connection.refused", "proxy.refused", "metrics.request"}


def _busy_run(fx, json=True):
    """Sessions that produce most per-session events, over both TLS kinds."""
    d = fx.connect("starttls", source="127.0.0.5")
    d.ehlo()
    d.starttls()
    d.ehlo()
    d.auth_plain(ALICE, fx.secret("Wrong-horse-battery-99")).expect(535)
    d.auth_plain("ghost@example.com", PASSWORD).expect(535)
    d.auth_plain(ALICE, PASSWORD).expect(235)
    d.cmd("MAIL FROM:<mallory@evil.test>").expect(553)
    d.cmd("MAIL FROM:<%s>" % ALICE).expect(250)
    d.cmd("RCPT TO:<someone@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: logs\r\n\r\nhello\r\n.\r\n")
    d.reply().expect(250)
    d.cmd("QUIT").expect(221)
    e = fx.connect("implicit", source="127.0.0.6")
    e.ehlo()
    e.cmd("AUTH LOGIN").expect(334)
    e.cmd("YWxpY2VAZXhhbXBsZS5jb20=").expect(334)
    e.cmd("V3JvbmctaG9yc2UtYmF0dGVyeS05OQ==").expect(535)
    e.cmd("QUIT").expect(221)
    if json:
        fx.wait_for(lambda: len(fx.events("disconnect")) >= len(fx.events("connect")), 5,
                    "sessions did not end")
    else:
        time.sleep(1)  # text lines: the harness reads only JSON


def test_every_session_line_carries_its_session_id(fx):
    fx.add_user(ALICE)
    fx.start()  # log level debug: every event
    _busy_run(fx)
    lines = fx.log_lines()
    ids = {e["session"] for e in lines if e["event"] == "connect"}
    check(len(ids) >= 2, "connect events: %r" % ids)
    for e in lines:
        if e["event"].startswith("backend.") and e.get("session") == "":
            continue  # the capability probe belongs to no session
        if "client" in e and e["event"] not in NO_SESSION or e.get("session") is not None:
            check(e.get("session") in ids, "line without its session id: %r" % e)
    per_session = {e["event"] for e in lines if e.get("session") in ids}
    for name in ("connect", "tls", "auth", "sender.refused", "message", "disconnect",
                 "backend.ready"):
        check(name in per_session, "no %r line in a session: %r" % (name, per_session))


def test_every_logged_event_is_documented(fx):
    fx.add_user(ALICE)
    fx.start()
    _busy_run(fx)
    fx.reload()
    fx.gateway.send_signal(signal.SIGTERM)
    fx.gateway.wait(timeout=15)
    fx.stopped = True
    check(fx.gateway.returncode == 0, "exit code %r" % fx.gateway.returncode)
    with open(DOC) as f:
        doc = f.read()
    documented = set(re.findall(r"^#### `([a-z_.]+)`", doc, re.M))
    seen = {e["event"] for e in fx.log_lines()}
    check(len(seen) >= 12, "too few events to judge: %r" % seen)
    missing = seen - documented
    check(not missing, "events not in docs/logs.md: %r" % sorted(missing))


def test_levels_and_text_format(fx):
    fx.add_user(ALICE)
    fx.start()
    # Switch to text at warn level with a reload (the harness's JSON reader stops here).
    fx.write_config({"log": {"format": "text", "level": "warn"}})
    size = os.path.getsize(fx.stdout_path)
    fx.gateway.send_signal(signal.SIGHUP)
    time.sleep(1)
    d = fx.connect("implicit", source="127.0.0.7")
    d.ehlo()
    d.auth_plain(ALICE, fx.secret("Wrong-horse-battery-99")).expect(535)
    d.auth_plain(ALICE, PASSWORD).expect(235)
    d.cmd("QUIT").expect(221)
    time.sleep(0.5)
    with open(fx.stdout_path, "rb") as f:
        f.seek(size)
        text = f.read().decode()
    lines = [l for l in text.splitlines() if l.strip()]
    check(lines, "nothing logged after the switch to text")
    pattern = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info |warn |error) "
                         r"[a-z_.]+( [a-z_]+=(\"([^\"\\]|\\.)*\"|\S+))*$")
    for line in lines:
        check(pattern.match(line), "text line not in the documented form: %r" % line)
        check(" info " not in line[:30] and " debug " not in line[:30],
              "level warn let through: %r" % line)
    failures = [l for l in lines if " auth " in l and "result=failure" in l]
    check(len(failures) == 1 and "client=127.0.0.7" in failures[0]
          and re.search(r"session=[0-9a-f]+ ", failures[0])
          and 'reason="wrong password"' in failures[0], "auth failure line: %r" % failures)
    check(not [l for l in lines if "result=success" in l], "info line at level warn")


def _fail2ban(fx, logfile):
    p = fx.run_tool(["fail2ban-regex", "--print-all-matched", logfile, FILTER], timeout=120)
    check(p.returncode == 0, "fail2ban-regex failed: %s%s" % (p.stdout[-2000:], p.stderr[-2000:]))
    total = re.search(r"^Failregex: (\d+) total", p.stdout, re.M)
    check(total, "no Failregex summary: %s" % p.stdout[-2000:])
    return int(total.group(1)), p.stdout


def _regex_lines(text):
    return [l for l in text.splitlines()
            if l.startswith(("failregex", "datepattern")) or l.startswith("            ^")]


def test_fail2ban_filter_matches_auth_failures(fx):
    check(shutil.which("fail2ban-regex"), "fail2ban-regex missing (Debian package fail2ban)")
    with open(FILTER) as f, open(DOC) as g:
        check(_regex_lines(f.read()) == _regex_lines(g.read()),
              "the filter in docs/logs.md differs from " + FILTER)
    fx.add_user(ALICE)
    fx.start()
    _busy_run(fx)  # 2 failures from 127.0.0.5, 1 from 127.0.0.6, 1 success
    n, out = _fail2ban(fx, fx.stdout_path)
    check(n == 3, "fail2ban matched %d JSON lines, expected 3:\n%s" % (n, out[-3000:]))
    check(out.count("127.0.0.5") >= 2 and "127.0.0.6" in out, "hosts: %s" % out[-3000:])
    check("Dates: " in out or "Date template hits" in out, out[-1500:])
    check(not re.search(r"result\":\"success", "\n".join(
        l for l in out.splitlines() if l.lstrip().startswith("|"))), "matched a success line")

    # The same filter on text-format lines.
    fx.write_config({"log": {"format": "text"}})
    size = os.path.getsize(fx.stdout_path)
    fx.gateway.send_signal(signal.SIGHUP)
    time.sleep(1)
    _busy_run(fx, json=False)
    text_log = os.path.join(fx.dir, "text.log")
    with open(fx.stdout_path, "rb") as src, open(text_log, "wb") as dst:
        src.seek(size)
        dst.write(src.read())
    n, out = _fail2ban(fx, text_log)
    check(n == 3, "fail2ban matched %d text lines, expected 3:\n%s" % (n, out[-3000:]))
