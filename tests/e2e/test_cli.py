"""The command line: check-config, user add/passwd/del/list, hash, healthcheck, SIGHUP."""

import os
import re
import signal

from harness import PASSWORD, PASSWORD_2, check

ALICE = "alice@example.com"


def _out(p):
    return p.stdout + p.stderr


def test_check_config_ok(fx):
    fx.add_user(ALICE)
    p = fx.cli("check-config", "--config", fx.cfg)
    check(p.returncode == 0, "check-config exited %d: %s" % (p.returncode, _out(p)))


def test_check_config_typo_names_line_and_column(fx):
    with open(fx.cfg) as f:
        lines = f.read().split("\n")
    at = lines.index("[server]") + 1
    lines.insert(at, "max_conections = 100")
    bad = os.path.join(fx.dir, "portcullis.toml")
    with open(bad, "w") as f:
        f.write("\n".join(lines))
    p = fx.cli("check-config", "--config", bad)
    out = _out(p)
    check(p.returncode == 1, "check-config exited %d on a typo: %s" % (p.returncode, out))
    m = re.search(r"portcullis\.toml:(\d+):(\d+)", out)
    check(m, "no portcullis.toml:LINE:COL in %r" % out)
    check(int(m.group(1)) == at + 1, "typo is on line %d, diagnostic says %s: %r"
          % (at + 1, m.group(1), out))
    check("max_conections" in out, "diagnostic does not name the key: %r" % out)
    # serve refuses the same file
    p = fx.cli("serve", "--config", bad, timeout=20)
    check(p.returncode != 0, "serve started with a typo in the config")
    check(re.search(r"portcullis\.toml:%d:\d+" % (at + 1), _out(p)),
          "serve did not name the line: %r" % _out(p))


def test_check_config_metrics(fx):
    with open(fx.cfg, "a") as f:
        f.write('\n[metrics]\naddress = "127.0.0.1:9587"\n')
    p = fx.cli("check-config", "--config", fx.cfg)
    check(p.returncode == 0, "check-config refused [metrics]: %s" % _out(p))
    with open(fx.cfg, "a") as f:
        f.write('adress = "127.0.0.1:9588"\n')
    p = fx.cli("check-config", "--config", fx.cfg)
    out = _out(p)
    check(p.returncode == 1, "check-config exited %d on a misspelt key: %s" % (p.returncode, out))
    check(re.search(r"portcullis\.toml:\d+:\d+: unknown key 'adress' in \[metrics\]", out),
          "no file:line:col for the unknown key in %r" % out)


def test_check_config_rate_limits(fx):
    with open(fx.cfg, "a") as f:
        f.write('\n[rate_limits]\nmessages = "200/1h"\nbytes = "500MiB/1d"\n')
    p = fx.cli("check-config", "--config", fx.cfg)
    check(p.returncode == 0, "check-config refused [rate_limits]: %s" % _out(p))
    with open(fx.cfg, "a") as f:
        f.write('recipients = "1000/day"\n')
    p = fx.cli("check-config", "--config", fx.cfg)
    out = _out(p)
    check(p.returncode == 1, "check-config accepted a bad rate: %s" % out)
    check(re.search(r"portcullis\.toml:\d+:\d+: rate_limits\.recipients: invalid rate", out),
          "no file:line:col and key in %r" % out)


def test_check_config_bad_users_file(fx):
    with open(fx.users_file, "a") as f:
        f.write('\n[users."x@example.com"]\npassword = "not-a-hash"\nsendrs = []\n')
    p = fx.cli("check-config", "--config", fx.cfg)
    out = _out(p)
    check(p.returncode == 1, "check-config exited %d on a broken users file: %s"
          % (p.returncode, out))
    check(re.search(r"users\.toml:\d+:\d+", out), "no users.toml:LINE:COL in %r" % out)


def test_user_add_keeps_comments_and_uses_config_cost(fx):
    with open(fx.users_file, "w") as f:
        f.write("# Mail users of the e2e gateway -- keep this comment\n\n"
                "# the first user\n")
    fx.add_user(ALICE)
    fx.add_user("bob@example.com", PASSWORD_2, senders=["*@corp.example", "bob@example.com"])
    with open(fx.users_file) as f:
        text = f.read()
    check("# Mail users of the e2e gateway -- keep this comment" in text, "comment lost:\n" + text)
    check("# the first user" in text, "second comment lost:\n" + text)
    hashes = re.findall(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=1\$", text)
    check(hashes == [("19456", "2"), ("19456", "2")],
          "hashes should use hash_memory 19MiB and hash_iterations 2: %r\n%s" % (hashes, text))
    check(PASSWORD not in text and PASSWORD_2 not in text, "plaintext password in users file")
    p = fx.cli("user", "list", "--config", fx.cfg)
    check(p.returncode == 0, "user list exited %d: %s" % (p.returncode, _out(p)))
    lines = p.stdout.strip().split("\n")
    check(lines == ["alice@example.com\tenabled\t-",
                    "bob@example.com\tenabled\t*@corp.example,bob@example.com"],
          "user list printed %r" % p.stdout)
    check("$argon2id$" not in _out(p), "user list prints hashes")


def test_user_add_refuses_weak_password(fx):
    p = fx.add_user(ALICE, "password123", must_succeed=False)
    out = _out(p)
    check(p.returncode == 1, "weak password: exit %d: %s" % (p.returncode, out))
    check(re.search(r"weak|refused|guess|score", out, re.I), "no reason given: %r" % out)
    p = fx.add_user(ALICE, "alice-example", must_succeed=False)  # built from the name
    check(p.returncode == 1, "password from the user name accepted: %s" % _out(p))
    p = fx.cli("user", "list", "--config", fx.cfg)
    check(ALICE not in p.stdout, "refused user was added anyway: %r" % p.stdout)


def test_user_add_duplicate_and_bad_name(fx):
    fx.add_user(ALICE)
    p = fx.add_user(ALICE, PASSWORD_2, must_succeed=False)
    check(p.returncode != 0, "second add of the same user succeeded")
    p = fx.add_user('bad "name"', PASSWORD_2, must_succeed=False)
    check(p.returncode != 0, "a user name with quotes and spaces was accepted")
    p = fx.add_user("dave@example.com", PASSWORD_2, senders=["*@*"], must_succeed=False)
    check(p.returncode != 0, "an invalid sender pattern was accepted")


def test_user_passwd_and_del(fx):
    fx.add_user(ALICE)
    fx.add_user("bob@example.com", PASSWORD_2)
    new = fx.secret("N3w-and-entirely-different-pass")
    p = fx.cli("user", "passwd", ALICE, "--password-stdin", "--config", fx.cfg, stdin=new + "\n")
    check(p.returncode == 0, "user passwd exited %d: %s" % (p.returncode, _out(p)))
    p = fx.cli("user", "del", "bob@example.com", "--config", fx.cfg)
    check(p.returncode == 0, "user del exited %d: %s" % (p.returncode, _out(p)))
    with open(fx.users_file) as f:
        text = f.read()
    check(text.startswith("# Users of the e2e test gateway"), "comment lost:\n" + text)
    p = fx.cli("user", "del", "ghost@example.com", "--config", fx.cfg)
    check(p.returncode != 0, "deleting a missing user succeeded")
    p = fx.cli("user", "list", "--config", fx.cfg)
    check(p.stdout.strip().split("\n") == ["alice@example.com\tenabled\t-"],
          "user list after del: %r" % p.stdout)
    fx.start()
    d = fx.connect("implicit")
    d.ehlo()
    d.auth_plain(ALICE, PASSWORD).expect(535, "5.7.8")
    d.auth_plain("bob@example.com", PASSWORD_2).expect(535, "5.7.8")
    d.auth_plain(ALICE, new).expect(235, "2.7.0")


def test_hash_command(fx):
    p = fx.cli("hash", "--password-stdin", stdin=PASSWORD + "\n")
    check(p.returncode == 0, "hash exited %d: %s" % (p.returncode, _out(p)))
    check(re.fullmatch(r"\$argon2id\$v=19\$m=\d+,t=\d+,p=1\$\S+\$\S+\n?", p.stdout),
          "hash printed %r" % p.stdout)
    check(PASSWORD not in _out(p), "hash echoed the password")


def test_healthcheck(fx):
    fx.start()
    p = fx.cli("healthcheck", "--config", fx.cfg, timeout=30)
    check(p.returncode == 0, "healthcheck exited %d while serving: %s" % (p.returncode, _out(p)))
    problem = fx.stop()
    check(problem is None, problem)
    p = fx.cli("healthcheck", "--config", fx.cfg, timeout=30)
    check(p.returncode != 0, "healthcheck exited 0 with the gateway stopped")


def test_sighup_reloads_users(fx):
    fx.add_user(ALICE)
    fx.start()
    d = fx.session("starttls")  # a session that started before the reload
    fx.add_user("erin@example.com", PASSWORD_2)
    fx.cli("user", "del", ALICE, "--config", fx.cfg)
    fx.gateway.send_signal(signal.SIGHUP)

    def erin_ok():
        e = fx.connect("implicit")
        e.ehlo()
        r = e.auth_plain("erin@example.com", PASSWORD_2)
        e.close()
        return r.code == 235
    fx.wait_for(erin_ok, 10, "new user cannot log in after SIGHUP")
    e = fx.connect("implicit")
    e.ehlo()
    e.auth_plain(ALICE, PASSWORD).expect(535)  # deleted user is gone for new sessions
    # the old session keeps working
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("RCPT TO:<someone@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: after reload\r\n\r\nx\r\n.\r\n")
    d.reply().expect(250)
