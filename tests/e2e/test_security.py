"""Secrets and privileges: the gateway refuses to start with a private key or users file
that other users can read (and says how to fix it), and drops root after binding."""

import os
import pwd

from harness import check, PASSWORD

ALICE = "alice@example.com"


def _serve_once(fx):
    p = fx.run_tool([fx.binary, "serve", "--config", fx.cfg], timeout=20)
    return p.returncode, p.stdout + p.stderr


def test_world_readable_private_key_refused(fx):
    fx.write_config()
    os.chmod(fx.rsa_key, 0o644)
    code, out = _serve_once(fx)
    check(code == 1, "serve exited %d with a world-readable key:\n%s" % (code, out))
    check(fx.rsa_key in out and "readable by other users" in out and "chmod 600" in out,
          "the refusal does not name the file, the cause and the fix:\n%s" % out)
    p = fx.cli("check-config", "--config", fx.cfg)
    check(p.returncode == 1 and fx.rsa_key in p.stderr,
          "check-config did not refuse the key: %d %s" % (p.returncode, p.stderr))


def test_world_readable_users_file_refused(fx):
    fx.add_user(ALICE)
    fx.write_config()
    os.chmod(fx.users_file, 0o604)
    code, out = _serve_once(fx)
    check(code == 1, "serve exited %d with a world-readable users file:\n%s" % (code, out))
    check(fx.users_file in out and "users file" in out and "chmod 600" in out,
          "the refusal does not name the users file and the fix:\n%s" % out)


def test_private_files_accepted(fx):
    fx.add_user(ALICE)
    fx.write_config()
    for path in (fx.rsa_key, fx.ecdsa_key, fx.users_file):
        check(os.stat(path).st_mode & 0o077 == 0, "%s is not private" % path)
    p = fx.cli("check-config", "--config", fx.cfg)
    check(p.returncode == 0, "check-config refused private files: %s" % p.stderr)


def _uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return None


def test_drops_privileges_after_binding(fx):
    if os.geteuid() != 0:
        check(False, "this test needs root (the CI and dev machines run as root)")
    nobody = pwd.getpwnam("nobody")
    fx.add_user(ALICE)
    fx.start({"server": {"user": "nobody"}})
    fx.wait_event("privileges.dropped")
    uids = _uid_of(fx.gateway.pid)
    check(uids is not None and all(u == nobody.pw_uid for u in uids),
          "gateway still runs with uids %r" % (uids,))
    # Still serves mail: everything it needs was opened before the switch.
    c = fx.smtp("starttls", login=(ALICE, PASSWORD))
    c.sendmail(ALICE, ["someone@example.net"], b"Subject: x\r\n\r\nhello\r\n")
    c.quit()
    check(fx.message(1).endswith(b"hello\r\n"), "message not relayed after dropping root")


def test_unknown_user_refused_at_start(fx):
    fx.write_config({"server": {"user": "no-such-user-portcullis"}})
    code, out = _serve_once(fx)
    check(code == 1 and "no-such-user-portcullis" in out and "no such user" in out,
          "serve with an unknown [server] user: %d\n%s" % (code, out))
