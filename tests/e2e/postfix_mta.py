"""A real Postfix for the end-to-end tests: a private instance (postfix -c DIR) with its
own configuration, queue and data directories under a temp dir, listening on loopback
only, logging to its own file and delivering every mail for example.net into one
Maildir. The system's Postfix service is never touched.

    mta = PostfixMTA(fx, tls=(cert, key), proxy_protocol=True)
    mta.start()                       # mta.port: plain SMTP (XCLIENT from 127.0.0.0/8)
                                      # mta.proxy_port: the same, behind a PROXY header
    mta.maillog()                     # its log
    mta.delivered()                   # [bytes of each delivered message]

Standard library only; needs root (Postfix's master runs as root) and Debian's postfix.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time

from harness import Failure, check, free_ports

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
MASTER_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def available():
    return os.geteuid() == 0 and os.path.exists(POSTFIX)


class PostfixMTA:
    def __init__(self, fx, tls=None, xclient_hosts="127.0.0.0/8", hostname="mta.test"):
        check(available(), "Postfix tests need root and Debian's postfix package "
                           "(./dev.sh test installs it)")
        self.fx = fx
        self.tls = tls
        self.xclient_hosts = xclient_hosts
        self.hostname = hostname
        # Its own temp dir, traversable by the postfix user (the harness umask is 077).
        self.root = tempfile.mkdtemp(prefix="portcullis-postfix-")
        os.chmod(self.root, 0o755)
        self.conf = os.path.join(self.root, "conf")
        self.queue = os.path.join(self.root, "queue")
        self.data = os.path.join(self.root, "data")
        self.mail = os.path.join(self.root, "mail")
        self.log_path = os.path.join(self.root, "maillog")
        self.port, self.proxy_port = free_ports(2)
        self.started = False
        fx.closers.append(self.stop)

    def _write(self, name, text, mode=0o644):
        path = os.path.join(self.conf, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def start(self):
        postfix = pwd.getpwnam("postfix")
        nobody = pwd.getpwnam("nobody")
        for d in (self.conf, self.queue, self.data, self.mail):
            os.makedirs(d)
            os.chmod(d, 0o755)
        os.chown(self.data, postfix.pw_uid, postfix.pw_gid)
        os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
        main = [
            "compatibility_level = 3.6",
            "queue_directory = " + self.queue,
            "data_directory = " + self.data,
            "command_directory = /usr/sbin",
            "daemon_directory = /usr/lib/postfix/sbin",
            "meta_directory = /etc/postfix",
            "shlib_directory = /usr/lib/postfix",
            "mail_owner = postfix",
            "setgid_group = postdrop",
            "myhostname = " + self.hostname,
            "mydomain = test",
            "myorigin = $myhostname",
            "mydestination =",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.1/32",
            "smtpd_authorized_xclient_hosts = " + self.xclient_hosts,
            "maillog_file_prefixes = " + self.root,
            "maillog_file = " + self.log_path,
            "virtual_mailbox_domains = example.net",
            "virtual_mailbox_base = " + self.mail,
            "virtual_mailbox_maps = static:inbox/",
            "virtual_uid_maps = static:%d" % nobody.pw_uid,
            "virtual_gid_maps = static:%d" % nobody.pw_gid,
            "virtual_minimum_uid = 100",
            "alias_maps =",
            "alias_database =",
            "biff = no",
            "smtputf8_enable = yes",
            "smtpd_tls_loglevel = 1",
        ]
        if self.tls:
            main += ["smtpd_tls_cert_file = " + self.tls[0],
                     "smtpd_tls_key_file = " + self.tls[1],
                     "smtpd_tls_security_level = may",
                     "smtpd_tls_received_header = yes"]
        self._write("main.cf", "\n".join(main) + "\n")
        self._write("master.cf",
                    "127.0.0.1:%d inet n - n - - smtpd\n" % self.port +
                    "127.0.0.1:%d inet n - n - - smtpd -o smtpd_upstream_proxy_protocol=haproxy\n"
                    % self.proxy_port + MASTER_SERVICES)
        # "postfix start" checks the configuration and creates the queue directories.
        p = subprocess.run([POSTFIX, "-c", self.conf, "start"], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise Failure("postfix start failed (%d): %s%s\n%s" % (
                p.returncode, p.stdout, p.stderr, self.maillog()[-2000:]))
        self.started = True
        self.fx.wait_for(lambda: "daemon started" in self.maillog(), 15,
                         "Postfix did not log 'daemon started':\n" + self.maillog()[-2000:])
        return self

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        if self.started:
            pid = self.master_pid()
            subprocess.run([POSTFIX, "-c", self.conf, "stop"], capture_output=True, timeout=60,
                           stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + 15
            while pid and time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            self.started = False
        if not self.fx.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def maillog(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_lines(self, contains):
        return [l for l in self.maillog().splitlines() if contains in l]

    def delivered(self):
        out = []
        for path in sorted(glob.glob(os.path.join(self.mail, "inbox", "new", "*"))):
            with open(path, "rb") as f:
                out.append(f.read())
        return out

    def wait_delivered(self, n=1, timeout=15):
        return self.fx.wait_for(lambda: len(self.delivered()) >= n and self.delivered(), timeout,
                                "Postfix delivered %d message(s), expected %d; its log:\n%s"
                                % (len(self.delivered()), n, self.maillog()[-3000:]))
