"""Deployment: `portcullis user import` (Dovecot passwd-file, htpasswd) end to end, the
systemd unit (systemd-analyze verify and its security score) and the container
manifests (valid YAML, and their portcullis.toml accepted by the real check-config).

The container image itself is tested by scripts/container-test.sh (podman)."""

import os
import re
import secrets
import shutil
import smtplib
import subprocess

from harness import PASSWORD, PASSWORD_2, check

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
UNIT = os.path.join(ROOT, "conf", "systemd", "portcullis.service")
# The unit must stay "OK" in `systemd-analyze security` (exposure 0.0 safe .. 10.0 unsafe).
MAX_EXPOSURE = 2.0


def _out(p):
    return p.stdout + p.stderr


def _argon2_cli(password, t=2, m_log2=15, p=2):
    """A hash made by the reference implementation (Debian package argon2), with a
    parallelism libsodium never writes but must verify."""
    check(shutil.which("argon2"), "the argon2 CLI is missing (apt-get install argon2)")
    salt = secrets.token_hex(8)
    r = subprocess.run(["argon2", salt, "-id", "-t", str(t), "-m", str(m_log2), "-p", str(p),
                        "-e"], input=password.encode(), capture_output=True, timeout=60)
    check(r.returncode == 0, "argon2 failed: %r" % r.stderr)
    return r.stdout.decode().strip()


def _send(fx, user, password):
    c = fx.smtp(login=(user, password))
    c.sendmail(user, ["bob@example.net"],
               "From: %s\r\nTo: bob@example.net\r\nSubject: imported\r\n\r\nhello\r\n" % user)
    c.quit()


def _login_refused(fx, user, password):
    try:
        fx.smtp(login=(user, password))
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code == 535
    return False


def test_user_import_dovecot_passwd_file_then_auth(fx):
    alice_hash = _argon2_cli(fx.secret(PASSWORD))
    check(",p=2$" in alice_hash, "unexpected argon2 output %r" % alice_hash)
    h = fx.cli("hash", "--password-stdin", stdin=fx.secret(PASSWORD_2) + "\n")
    check(h.returncode == 0, "portcullis hash failed: %s" % _out(h))
    carol_hash = h.stdout.strip()
    passwd = os.path.join(fx.dir, "dovecot.passwd")
    with open(passwd, "w") as f:
        f.write("# dovecot passwd-file\n"
                "alice@example.com:{ARGON2ID}%s:1000:1000::/home/alice::userdb_quota_rule=*:storage=1G\n"
                "bob@example.com:{SHA512-CRYPT}$6$rounds=5000$abc$def:1001:1001::/home/bob\n"
                "carol@example.com:{ARGON2ID}%s::::::\n" % (alice_hash, carol_hash))
    before = open(fx.users_file).read()

    p = fx.cli("user", "import", passwd, "--config", fx.cfg)
    check(p.returncode == 1, "an unsupported scheme did not fail the import: %s" % _out(p))
    check("dovecot.passwd:3: user \"bob@example.com\": scheme {SHA512-CRYPT}" in p.stderr,
          "the skipped line is not named by file and line: %r" % p.stderr)
    check(open(fx.users_file).read() == before, "a failed import changed the users file")

    p = fx.cli("user", "import", passwd, "--skip-unsupported", "--dry-run", "--config", fx.cfg)
    check(p.returncode == 0 and "would import 2 user(s)" in p.stdout, _out(p))
    check(open(fx.users_file).read() == before, "--dry-run changed the users file")

    p = fx.cli("user", "import", passwd, "--skip-unsupported", "--config", fx.cfg)
    check(p.returncode == 0, "import exited %d: %s" % (p.returncode, _out(p)))
    check("imported 2 user(s) (2 added, 0 replaced), skipped 1" in p.stdout, _out(p))
    after = open(fx.users_file).read()
    check(after.startswith(before), "the users file's comment was not kept")
    check(oct(os.stat(fx.users_file).st_mode & 0o777) == oct(0o600), "mode changed")
    listing = fx.cli("user", "list", "--config", fx.cfg).stdout
    check("alice@example.com\tenabled" in listing and "carol@example.com\tenabled" in listing
          and "bob@" not in listing, "user list: %r" % listing)

    fx.start()
    _send(fx, "alice@example.com", PASSWORD)   # verified against the argon2 CLI's hash
    _send(fx, "carol@example.com", PASSWORD_2)  # and against `portcullis hash`'s
    check(len(fx.messages()) == 2, "the backend got %d messages" % len(fx.messages()))
    check(_login_refused(fx, "alice@example.com", PASSWORD_2), "a wrong password was accepted")
    check(_login_refused(fx, "bob@example.com", "anything-at-all-42"),
          "the skipped user can log in")


def test_user_import_htpasswd_replace_and_reload(fx):
    fx.add_user("alice@example.com", senders=["alice@example.com"])
    fx.start()
    _send(fx, "alice@example.com", PASSWORD)
    htpasswd = os.path.join(fx.dir, "htpasswd")
    with open(htpasswd, "w") as f:
        f.write("alice@example.com:%s\n" % _argon2_cli(fx.secret(PASSWORD_2), p=1))
        f.write("legacy@example.com:$apr1$Vu2nnQ0y$0K9E1ZmxJJwsVo8iO/Uox/\n")

    p = fx.cli("user", "import", htpasswd, "--skip-unsupported", "--config", fx.cfg)
    check(p.returncode == 1 and "already exists" in p.stderr and "htpasswd:1:" in p.stderr,
          "importing an existing user without --replace: %s" % _out(p))
    check("Apache MD5" in p.stderr and "htpasswd:2:" in p.stderr, _out(p))

    p = fx.cli("user", "import", htpasswd, "--skip-unsupported", "--replace", "--config", fx.cfg)
    check(p.returncode == 0 and "1 replaced" in p.stdout, _out(p))
    fx.reload()
    _send(fx, "alice@example.com", PASSWORD_2)
    check(_login_refused(fx, "alice@example.com", PASSWORD), "the old password still works")
    listing = fx.cli("user", "list", "--config", fx.cfg).stdout
    check("alice@example.com\tenabled\talice@example.com" in listing,
          "--replace lost the user's senders: %r" % listing)


def test_user_import_refuses_hashes_libsodium_cannot_verify(fx):
    v16 = _argon2_cli("whatever password", p=1).replace("$v=19$", "$v=16$")
    passwd = os.path.join(fx.dir, "passwd")
    with open(passwd, "w") as f:
        f.write("old@example.com:{ARGON2ID}%s\n" % v16)
    before = open(fx.users_file).read()
    p = fx.cli("user", "import", passwd, "--skip-unsupported", "--config", fx.cfg)
    check(p.returncode == 1, "an Argon2 v=16 hash was imported: %s" % _out(p))
    check("passwd:1: user \"old@example.com\": Argon2 version \"v=16\"" in p.stderr, _out(p))
    check(open(fx.users_file).read() == before, "the users file changed")


def _systemd_analyze():
    tool = shutil.which("systemd-analyze")
    check(tool, "systemd-analyze is missing (Debian package systemd; ./dev.sh installs it)")
    return tool


def test_systemd_unit_verifies_and_scores_ok(fx):
    tool = _systemd_analyze()
    text = open(UNIT).read()
    # verify wants the executables to exist: point the unit at the binary under test.
    unit = os.path.join(fx.dir, "portcullis.service")
    with open(unit, "w") as f:
        f.write(text.replace("/usr/local/bin/portcullis", fx.binary))
    p = subprocess.run([tool, "verify", unit], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and "portcullis.service" not in _out(p),
          "systemd-analyze verify: %s" % _out(p))

    p = subprocess.run([tool, "security", "--offline=true",
                        "--threshold=%d" % int(MAX_EXPOSURE * 10), unit],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for portcullis\.service: ([0-9.]+) (\w+)", _out(p))
    check(m, "no exposure level in %r" % _out(p)[-500:])
    check(p.returncode == 0 and float(m.group(1)) <= MAX_EXPOSURE,
          "exposure %s %s is above %.1f" % (m.group(1), m.group(2), MAX_EXPOSURE))

    for line in ("Type=simple", "User=portcullis", "ExecReload=/bin/kill -HUP $MAINPID",
                 "KillSignal=SIGTERM", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "PrivateTmp=yes",
                 "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes",
                 "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"):
        check(re.search(r"^%s$" % re.escape(line), text, re.M), "the unit lacks %s" % line)
    stop = re.search(r"^TimeoutStopSec=(\d+)s$", text, re.M)
    check(stop and int(stop.group(1)) > 30,
          "TimeoutStopSec must exceed the default drain_timeout of 30 s")
    # ExecStart and ExecStartPre use commands that exist, with the same config file.
    for cmd in re.findall(r"^ExecStart(?:Pre)?=/usr/local/bin/portcullis (\S+) --config (\S+)$",
                          text, re.M):
        check(cmd == ("check-config", "/etc/portcullis/portcullis.toml")
              or cmd == ("serve", "/etc/portcullis/portcullis.toml"), "unexpected %r" % (cmd,))


def _yaml():
    try:
        import yaml
    except ImportError:
        raise AssertionError("python3-yaml is missing (./dev.sh installs it)")
    return yaml


def _check_config_text(fx, toml_text, mount="/etc/portcullis/", extra=()):
    """Runs the real check-config on a manifest's portcullis.toml, with its mount point
    replaced by a temp dir holding a certificate, a key and a users file."""
    root = os.path.join(fx.dir, "mounted")
    os.makedirs(os.path.join(root, "tls"), exist_ok=True)
    os.makedirs(os.path.join(root, "users"), exist_ok=True)
    os.makedirs(os.path.join(root, "config"), exist_ok=True)
    for name in ("fullchain.pem", "tls.crt"):
        shutil.copy(fx.ecdsa_cert, os.path.join(root, "tls", name))
    for name in ("privkey.pem", "tls.key"):
        shutil.copy(fx.ecdsa_key, os.path.join(root, "tls", name))
    shutil.copy(fx.users_file, os.path.join(root, "users", "users.toml"))
    cfg = os.path.join(root, "config" if "/config/" in mount else "", "portcullis.toml")
    with open(cfg, "w") as f:
        f.write(toml_text.replace("/etc/portcullis/", root + "/"))
    p = fx.cli("check-config", "--config", cfg)
    check(p.returncode == 0, "check-config refused the manifest's config: %s" % _out(p))


def test_container_manifests(fx):
    yaml = _yaml()
    compose = yaml.safe_load(open(os.path.join(ROOT, "container", "compose.yaml")))
    gw = compose["services"]["portcullis"]
    check(gw["build"]["dockerfile"] == "container/Containerfile", "compose builds %r" % gw)
    check("mta" in compose["services"] and "mta" in gw["depends_on"], "no MTA service")
    check(any(v.endswith(":/etc/portcullis/portcullis.toml:ro") for v in gw["volumes"]),
          "compose does not mount the config read-only: %r" % gw["volumes"])
    check(gw["sysctls"]["net.ipv4.ip_unprivileged_port_start"] == 0, "no port sysctl")
    grace = int(gw["stop_grace_period"].rstrip("s"))
    check(grace > 30, "stop_grace_period %ss does not exceed drain_timeout" % grace)
    compose_dir = os.path.join(ROOT, "container")
    check(os.path.isfile(os.path.join(compose_dir, compose["services"]["mta"]["build"]
                                      ["dockerfile"])), "the MTA's Containerfile is missing")
    _check_config_text(fx, open(os.path.join(compose_dir, "compose", "portcullis.toml")).read()
                       .replace('"tls/', '"/etc/portcullis/tls/')
                       .replace('"users/', '"/etc/portcullis/users/'))

    docs = [d for d in yaml.safe_load_all(open(os.path.join(ROOT, "container", "k8s",
                                                            "pod.yaml"))) if d]
    kinds = {d["kind"]: d for d in docs}
    check(set(kinds) == {"ConfigMap", "Pod", "Service"}, "pod.yaml has %r" % sorted(kinds))
    pod = kinds["Pod"]["spec"]
    names = [c["name"] for c in pod["containers"]]
    check(names == ["mta", "portcullis"], "containers %r" % names)
    gw = pod["containers"][1]
    check("readinessProbe" in gw and "livenessProbe" in gw, "probes missing")
    sc = gw["securityContext"]
    check(sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"]
          and sc["readOnlyRootFilesystem"], "securityContext %r" % sc)
    check(pod["terminationGracePeriodSeconds"] > 30, "grace period below drain_timeout")
    secrets_ = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    check(set(secrets_) == {"tls", "users"}, "secret volumes %r" % secrets_)
    for name, s in secrets_.items():
        # The gateway refuses keys and users files others may read (or its group write).
        check(s["defaultMode"] in (0o400, 0o440), "secret %s has mode %o" % (name,
                                                                             s["defaultMode"]))
    check(pod["securityContext"]["fsGroup"] == sc["runAsGroup"], "fsGroup is not the gateway's")
    config_text = kinds["ConfigMap"]["data"]["portcullis.toml"]
    check(gw["args"][-1] == "/etc/portcullis/config/portcullis.toml", "args %r" % gw["args"])
    _check_config_text(fx, config_text, mount="/etc/portcullis/config/")


def _syscall_groups(tool):
    """Every @group of `systemd-analyze syscall-filter`: name -> set of members."""
    out = subprocess.run([tool, "syscall-filter"], capture_output=True, text=True,
                         timeout=60).stdout
    groups, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), set())
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            current.add(line.strip())
    return groups


def _expand(groups, name, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for member in groups.get(name, ()):
        if member.startswith("@"):
            if member not in seen:
                seen.add(member)
                out |= _expand(groups, member, seen)
        else:
            out.add(member)
    return out


class _Traced:
    """The strace process as the harness sees it, except that signals reach its child,
    the gateway (strace exits with the gateway's exit code)."""

    def __init__(self, popen):
        self._p = popen
        children = open("/proc/%d/task/%d/children" % (popen.pid, popen.pid)).read().split()
        check(len(children) == 1, "strace has children %r" % children)
        self.child = int(children[0])

    def send_signal(self, sig):
        os.kill(self.child, sig)

    def __getattr__(self, name):
        return getattr(self._p, name)


def test_systemd_syscall_filter_allows_what_the_gateway_calls(fx):
    """Without systemd as PID 1 the unit cannot run here, so: trace every system call of
    a real session (start, STARTTLS, AUTH with Argon2id, a message, SIGHUP, SIGTERM) with
    strace and check each against the unit's SystemCallFilter as systemd resolves it."""
    tool = _systemd_analyze()
    strace = shutil.which("strace")
    check(strace, "strace is missing (apt-get install strace)")
    text = open(UNIT).read()
    groups = _syscall_groups(tool)
    allowed = set()
    for line in re.findall(r"^SystemCallFilter=(.+)$", text, re.M):
        deny = line.startswith("~")
        names = set()
        for item in line.lstrip("~").split():
            names |= _expand(groups, item) if item.startswith("@") else {item}
        allowed = (allowed - names) if deny else (allowed | names)
    check("read" in allowed and "setuid" not in allowed, "filter resolved oddly: %d calls"
          % len(allowed))

    trace = os.path.join(fx.dir, "strace.out")
    wrapper = os.path.join(fx.dir, "traced-portcullis")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec %s -f -qq -o %s %s \"$@\"\n" % (strace, trace, fx.binary))
    os.chmod(wrapper, 0o700)
    fx.add_user("alice@example.com")
    real_binary, fx.binary = fx.binary, wrapper
    try:
        fx.start()
        fx.gateway = _Traced(fx.gateway)  # signals go to the gateway, not to strace
        _send(fx, "alice@example.com", PASSWORD)
        fx.reload()
        _send(fx, "alice@example.com", PASSWORD)
        fx.stop()
    finally:
        fx.binary = real_binary
    used = set()
    for line in open(trace, errors="replace"):
        m = re.match(r"^\d+\s+([a-z0-9_]+)\(", line)
        if m:
            used.add(m.group(1))
    check(len(used) > 20, "strace saw only %r" % sorted(used))
    # execve is the exec of the traced binary itself, before systemd's filter would apply.
    outside = sorted(used - allowed - {"execve"})
    check(not outside, "the gateway calls %s, which the unit's SystemCallFilter denies "
          "(EPERM)" % ", ".join(outside))
