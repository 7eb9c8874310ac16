"""End-to-end fixture: a real `portcullis serve` in front of the recording backend.

Every test function gets a fresh Fixture. The fixture prepares a temp dir with two
self-signed certificates (ECDSA P-256 and RSA-2048), free ports, a users file and a
portcullis.toml; the test adds users through the real CLI, then calls start() (with
per-test config overrides and backend flags), talks to the gateway with real clients
and inspects what the backend recorded and what the gateway logged. teardown() stops
everything and returns the problems it saw (non-zero exit, sanitizer reports, leaked
passwords), which fail the test.

Standard library only.
"""

import base64
import glob
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# The gateway refuses private keys and users files that other users can read, as an
# operator's files should be; everything the tests create is private too.
os.umask(0o077)
BACKEND_SCRIPT = os.path.join(HERE, "recording_backend.py")

HOSTNAME = "gw.test"
GREETING = "220 gw.test ESMTP ready"
BACKEND_BANNER_TEXT = "RecordingBackend"
PASSWORD = "Tr0ub4dor&3-correct-horse-42"
PASSWORD_2 = "Gl4ss-staple-w1ndow-otter-97"
DEFAULT_MESSAGE_SIZE = 50 * 1024 * 1024
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer")
IO_TIMEOUT = 15.0


class Failure(AssertionError):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def plain_blob(user, password, authzid=""):
    return b64(authzid.encode() + b"\0" + user.encode() + b"\0" + password.encode())


_HANDED_OUT = set()  # ports already given to a fixture of this process


def free_ports(n):
    """n distinct free ports, never one handed out before in this process (the kernel
    readily gives a just-closed port again, and a test may ask twice)."""
    socks = []
    ports = []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                ports.append(port)
        return ports
    finally:
        for s in socks:
            s.close()


def client_tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


# ---------------------------------------------------------------- tiny TOML writer

def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join("%s = %s" % (k, _toml_value(x)) for k, x in v.items()) + " }"
    raise TypeError("cannot write %r as TOML" % (v,))


def to_toml(doc):
    out = []
    for table, body in doc.items():
        if isinstance(body, list):  # array of tables
            for item in body:
                out.append("[[%s]]" % table)
                out += ["%s = %s" % (k, _toml_value(v)) for k, v in item.items()]
                out.append("")
        else:
            out.append("[%s]" % table)
            out += ["%s = %s" % (k, _toml_value(v)) for k, v in body.items()]
            out.append("")
    return "\n".join(out)


def merge(base, overrides):
    """Deep-merge overrides into base (in place); a value None deletes the key."""
    for k, v in (overrides or {}).items():
        if v is None:
            base.pop(k, None)
        elif isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


# ---------------------------------------------------------------- raw SMTP dialog

class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines  # texts after "NNN-" / "NNN "

    @property
    def text(self):
        return "\n".join(self.lines)

    def __repr__(self):
        return repr("\r\n".join("%d%s%s" % (self.code, "-" if i < len(self.lines) - 1 else " ", l)
                                for i, l in enumerate(self.lines)))

    def expect(self, code, enhanced=None, contains=None):
        ok = self.code == code
        if enhanced is not None:
            ok = ok and self.lines[-1].startswith(enhanced + " ")
        if contains is not None:
            ok = ok and contains in self.text
        want = " ".join(str(x) for x in (code, enhanced, contains) if x is not None)
        check(ok, "expected %s, got %r" % (want, self))
        return self


class Dialog:
    """A line-level SMTP client over a plain or TLS socket, for edge cases."""

    def __init__(self, sock, tls=False):
        self.sock = sock
        self.buf = b""
        self.tls = tls
        self.greeting = None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _more(self):
        data = self.sock.recv(65536)
        if not data:
            raise Failure("gateway closed the connection (unread: %r)" % self.buf)
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self._more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        lines = []
        while True:
            line = self.line()
            check(len(line) >= 3 and line[:3].isdigit() and line[3:4] in ("", " ", "-"),
                  "malformed reply line %r" % line)
            lines.append(line[4:])
            if line[3:4] != "-":
                return Reply(int(line[:3]), lines)

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def pending(self, wait=0.5):
        """Whatever arrives within `wait` seconds (plus anything already buffered), up
        to the gateway's close: a reset ends it too, after the bytes that came before
        (the gateway resets when it closes with unread bytes of ours)."""
        data, self.buf = self.buf, b""
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:  # the wait is over (timeouts are OSErrors too) or a reset
            pass
        finally:
            self.sock.settimeout(IO_TIMEOUT)
        return data

    def closed_within(self, wait=3.0):
        """True when the gateway closes the connection within `wait` seconds (bytes that
        arrive before the close are kept in self.leftover)."""
        self.leftover = self.buf
        self.buf = b""
        deadline = time.monotonic() + wait
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.leftover += chunk
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True
        finally:
            try:
                self.sock.settimeout(IO_TIMEOUT)
            except OSError:
                pass
        return False

    def wrap_tls(self, ctx=None):
        check(not self.buf, "unexpected bytes before the TLS handshake: %r" % self.buf)
        self.sock = (ctx or client_tls_context()).wrap_socket(self.sock,
                                                              server_hostname=HOSTNAME)
        self.tls = True

    def starttls(self):
        self.cmd("STARTTLS").expect(220, "2.0.0")
        self.wrap_tls()

    def ehlo(self, name="client.test"):
        return self.cmd("EHLO " + name).expect(250)

    def auth_plain(self, user, password, authzid=""):
        return self.cmd("AUTH PLAIN " + plain_blob(user, password, authzid))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def ehlo_caps(reply):
    """EHLO reply -> {KEYWORD: [params]} (first line is the greeting name)."""
    caps = {}
    for line in reply.lines[1:]:
        parts = line.split()
        if parts:
            caps[parts[0].upper()] = parts[1:]
    return caps


# ---------------------------------------------------------------- the fixture

class Fixture:
    def __init__(self, binary, keep=False):
        self.binary = os.path.abspath(binary)
        self.keep = keep
        self.dir = tempfile.mkdtemp(prefix="portcullis-e2e-")
        self.cfg = os.path.join(self.dir, "portcullis.toml")
        self.users_file = os.path.join(self.dir, "users.toml")
        self.mail_dir = os.path.join(self.dir, "backend")
        self.stdout_path = os.path.join(self.dir, "gateway.stdout")
        self.stderr_path = os.path.join(self.dir, "gateway.stderr")
        self.gateway = None
        self.backend = None
        self.backend_log = None
        self.closers = []
        self.secrets = set()
        self.companions = []  # further gateways of this test (second_gateway)
        self.cli_problems = []
        (self.port_starttls, self.port_implicit, self.port_none, self.backend_port,
         self.closed_port) = free_ports(5)
        self.ports = {"starttls": self.port_starttls, "implicit": self.port_implicit,
                      "none": self.port_none}
        self._make_certs()
        with open(self.users_file, "w") as f:
            f.write("# Users of the e2e test gateway (written by harness.py)\n")
        self.config = self.base_config()
        self.write_config()

    # -- setup ------------------------------------------------------------------------

    def _make_certs(self):
        self.ecdsa_cert = os.path.join(self.dir, "ecdsa.crt")
        self.ecdsa_key = os.path.join(self.dir, "ecdsa.key")
        self.rsa_cert = os.path.join(self.dir, "rsa.crt")
        self.rsa_key = os.path.join(self.dir, "rsa.key")
        for cert, key, alg, cn in (
                (self.ecdsa_cert, self.ecdsa_key,
                 ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "ecdsa.gw.test"),
                (self.rsa_cert, self.rsa_key, ["-newkey", "rsa:2048"], "rsa.gw.test")):
            subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2", *alg,
                            "-subj", "/CN=" + cn, "-addext", "subjectAltName=DNS:gw.test",
                            "-keyout", key, "-out", cert],
                           check=True, capture_output=True, timeout=60)

    def base_config(self):
        return {
            "server": {"hostname": HOSTNAME, "workers": 2},
            "listener": [
                {"address": "127.0.0.1:%d" % self.port_starttls, "tls": "starttls"},
                {"address": "127.0.0.1:%d" % self.port_implicit, "tls": "implicit"},
                {"address": "127.0.0.1:%d" % self.port_none, "tls": "none"},
            ],
            "tls": {"certificate": [self.ecdsa_cert, self.rsa_cert],
                    "private_key": [self.ecdsa_key, self.rsa_key]},
            "backend": {"address": "127.0.0.1:%d" % self.backend_port},
            "auth": {"users_file": "users.toml", "failure_delay": "200ms",
                     "hash_memory": "19MiB", "hash_iterations": 2},
            "log": {"format": "json", "level": "debug"},
        }

    def write_config(self, overrides=None, path=None):
        if overrides:
            merge(self.config, overrides)
        with open(path or self.cfg, "w") as f:
            f.write("# portcullis.toml written by the e2e harness\n" + to_toml(self.config))
        return path or self.cfg

    def secret(self, password):
        self.secrets.add(password)
        return password

    def cli(self, *args, stdin=None, timeout=60):
        """Runs the binary; returns CompletedProcess (text). Sanitizer output is a problem."""
        extra = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
        p = subprocess.run([self.binary, *args], capture_output=True, text=True,
                           cwd=self.dir, timeout=timeout, **extra)
        for marker in SANITIZER_MARKERS:
            if marker in p.stderr:
                self.cli_problems.append("sanitizer report from `portcullis %s`:\n%s"
                                         % (" ".join(args), p.stderr[-3000:]))
                break
        return p

    def add_user(self, name, password=PASSWORD, senders=(), must_succeed=True):
        self.secret(password)
        args = ["user", "add", name, "--password-stdin"]
        for s in senders:
            args += ["--sender", s]
        p = self.cli(*args, "--config", self.cfg, stdin=password + "\n")
        if must_succeed:
            check(p.returncode == 0, "`portcullis %s` exited %d: %s%s"
                  % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p

    def start(self, overrides=None, backend_args=(), backend=True):
        """Writes the config, starts the recording backend and the gateway."""
        self.write_config(overrides)
        if backend:
            self.start_backend(backend_args)
        self.gateway = subprocess.Popen(
            [self.binary, "serve", "--config", self.cfg],
            stdin=subprocess.DEVNULL, stdout=open(self.stdout_path, "wb"),
            stderr=open(self.stderr_path, "wb"), cwd=self.dir)
        deadline = time.monotonic() + 10
        waiting = dict(self.ports)
        last = {}
        while waiting:
            if self.gateway.poll() is not None:
                raise Failure("gateway exited with %d during startup; stderr: %s; stdout: %s"
                              % (self.gateway.returncode, self.stderr_text()[-1500:],
                                 self.stdout_text()[-1500:]))
            for kind, port in list(waiting.items()):
                try:
                    line = self._probe(kind, port)
                    last[kind] = line
                    if line.startswith("220"):
                        del waiting[kind]
                except (OSError, ssl.SSLError) as e:
                    last[kind] = repr(e)
            if waiting:
                if time.monotonic() > deadline:
                    raise Failure("listeners did not answer 220 within 10 s: %r" % {
                        k: last.get(k) for k in waiting})
                time.sleep(0.1)
        # The gateway asks the backends' EHLO at start and offers clients only the
        # conservative set of extensions until that answers: begin once it was logged.
        self.wait_event("backend.probe", timeout=15)
        return self

    def _probe(self, kind, port):
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        try:
            if kind == "implicit":
                s = client_tls_context().wrap_socket(s, server_hostname=HOSTNAME)
            d = Dialog(s)
            line = d.line()
            try:
                d.send("QUIT\r\n")
                d.reply()
            except (OSError, Failure):
                pass
            return line
        finally:
            s.close()

    def start_backend(self, args=()):
        self.backend_log = open(os.path.join(self.dir, "backend.log"), "wb")
        self.backend = subprocess.Popen(
            [sys.executable, BACKEND_SCRIPT, "--dir", self.mail_dir,
             "--port", str(self.backend_port), *args],
            stdout=subprocess.PIPE, stderr=self.backend_log, stdin=subprocess.DEVNULL)
        line = self.backend.stdout.readline().decode()
        check(line.startswith("READY "), "recording backend did not start: %r" % line)

    # -- clients ----------------------------------------------------------------------

    def _track(self, obj, close):
        self.closers.append(close)
        return obj

    def connect(self, kind="starttls", source=None):
        """A raw Dialog to a listener (TLS already up on the implicit one), greeting read.
        `source` picks the client address, e.g. "127.0.0.7" (all of 127/8 is loopback)."""
        s = socket.create_connection(("127.0.0.1", self.ports[kind]), timeout=IO_TIMEOUT,
                                     source_address=(source, 0) if source else None)
        if kind == "implicit":
            s = client_tls_context().wrap_socket(s, server_hostname=HOSTNAME)
        d = Dialog(s, tls=(kind == "implicit"))
        self._track(d, d.close)
        d.greeting = d.reply()
        return d

    def session(self, kind="starttls", user="alice@example.com", password=PASSWORD,
                source=None):
        """A raw Dialog, EHLO'd, over TLS (except on "none"), authenticated with PLAIN."""
        d = self.connect(kind, source=source)
        d.ehlo()
        if kind == "starttls":
            d.starttls()
            d.ehlo()
        d.auth_plain(user, password).expect(235, "2.7.0")
        return d

    def smtp(self, kind="starttls", login=None):
        """An smtplib client: STARTTLS done on "starttls", implicit TLS on "implicit"."""
        import smtplib
        if kind == "implicit":
            c = smtplib.SMTP_SSL("127.0.0.1", self.ports[kind], timeout=IO_TIMEOUT,
                                 context=client_tls_context())
        else:
            c = smtplib.SMTP("127.0.0.1", self.ports[kind], timeout=IO_TIMEOUT)
        self._track(c, c.close)
        c.ehlo("client.test")
        if kind == "starttls":
            c.starttls(context=client_tls_context())
            c.ehlo("client.test")
        if login:
            c.login(*login)
        return c

    def run_tool(self, args, stdin=None, timeout=60):
        extra = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              cwd=self.dir, **extra)

    def reload(self, overrides=None, timeout=10):
        """Rewrites the config (with `overrides`), sends SIGHUP and waits for the reload
        to be logged; returns its log event."""
        self.write_config(overrides)
        before = len(self.events("reload"))
        self.gateway.send_signal(signal.SIGHUP)
        self.wait_for(lambda: len(self.events("reload")) > before, timeout,
                      "no reload logged after SIGHUP")
        return self.events("reload")[-1]

    # -- observations -----------------------------------------------------------------

    def backend_raw(self):
        """Everything every backend connection received, concatenated in order."""
        files = sorted(glob.glob(os.path.join(self.mail_dir, "conn-*.raw")),
                       key=lambda p: int(re.search(r"conn-(\d+)", p).group(1)))
        data = b""
        for p in files:
            with open(p, "rb") as f:
                data += f.read()
        return data

    def backend_connections(self):
        return len(glob.glob(os.path.join(self.mail_dir, "conn-*.raw")))

    def messages(self):
        out = {}
        for p in glob.glob(os.path.join(self.mail_dir, "msg-*.eml")):
            with open(p, "rb") as f:
                out[int(re.search(r"msg-(\d+)\.eml$", p).group(1))] = f.read()
        return out

    def message(self, n=1, timeout=5):
        path = os.path.join(self.mail_dir, "msg-%d.eml" % n)
        self.wait_for(lambda: os.path.exists(path), timeout,
                      "backend message %d never arrived (have %s)" % (n, sorted(self.messages())))
        with open(path, "rb") as f:
            return f.read()

    def stdout_text(self):
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_lines(self):
        """The gateway's stdout, one JSON object per line. A non-JSON line is a Failure."""
        out = []
        text = self.stdout_text()
        if not text.endswith("\n"):
            # The gateway may be writing a line right now: judge only complete lines.
            text = text[:text.rfind("\n") + 1]
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise Failure("gateway stdout line is not JSON: %r" % line)
            check(isinstance(obj, dict), "log line is not a JSON object: %r" % line)
            out.append(obj)
        return out

    def events(self, name):
        return [e for e in self.log_lines() if e.get("event") == name]

    def wait_for(self, pred, timeout=5, message="condition not met"):
        deadline = time.monotonic() + timeout
        while True:
            value = pred()
            if value:
                return value
            if time.monotonic() > deadline:
                raise Failure(message)
            time.sleep(0.05)

    def wait_event(self, name, pred=lambda e: True, timeout=5):
        return self.wait_for(lambda: [e for e in self.events(name) if pred(e)], timeout,
                             "no %r log event appeared within %ss" % (name, timeout))

    # -- teardown ---------------------------------------------------------------------

    def stop(self):
        """SIGTERM the gateway and wait; returns a problem string or None."""
        self.stopped = True
        if self.gateway.poll() is not None:
            return "gateway died during the test with exit code %d" % self.gateway.returncode
        self.gateway.send_signal(signal.SIGTERM)
        try:
            self.gateway.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.gateway.kill()
            self.gateway.wait()
            return "gateway did not exit within 15 s of SIGTERM"
        if self.gateway.returncode != 0:
            return "gateway exited %d after SIGTERM" % self.gateway.returncode
        return None

    def second_gateway(self):
        """Another gateway process (own dir, ports and log) sharing this one's users file
        and recording backend, as replicas behind a load balancer do. start() it with the
        same overrides, and backend=False; it is torn down with this fixture."""
        other = Fixture(self.binary, keep=self.keep)
        other.config["backend"]["address"] = "127.0.0.1:%d" % self.backend_port
        other.config["auth"]["users_file"] = self.users_file
        other.secrets = self.secrets
        self.companions.append(other)
        return other

    def serve_expecting_refusal(self, what):
        """Runs `serve` on this fixture's config in the foreground, for a configuration
        the gateway must refuse at start (`what` names the case); returns the
        CompletedProcess. A gateway still running after 20 s is a failure."""
        try:
            return subprocess.run([self.binary, "serve", "--config", self.cfg],
                                  capture_output=True, text=True, timeout=20, cwd=self.dir)
        except subprocess.TimeoutExpired:
            raise Failure("a second gateway started on %s" % what)

    def teardown(self, failed=False):
        problems = list(self.cli_problems)
        for other in self.companions:
            problems += ["second gateway: " + p for p in other.teardown(failed)]
        for close in reversed(self.closers):
            try:
                close()
            except Exception:
                pass
        if self.gateway is not None:
            if not getattr(self, "stopped", False):
                problem = self.stop()
                if problem:
                    problems.append(problem)
            err = self.stderr_text()
            for marker in SANITIZER_MARKERS:
                if marker in err:
                    i = err.index(marker)
                    problems.append("sanitizer report in gateway stderr:\n"
                                    + err[max(0, i - 200):i + 2500])
                    break
            out = self.stdout_text()
            for pw in self.secrets:
                if pw in out or pw in err:
                    problems.append("password %r appears in the gateway's output" % pw)
        if self.backend is not None:
            if self.backend.poll() is None:
                self.backend.terminate()
                try:
                    self.backend.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.backend.kill()
                    self.backend.wait()
            self.backend.stdout.close()
            self.backend_log.close()
        if problems or failed:
            tail = self.stderr_text()[-1200:].strip()
            if tail:
                problems.append("gateway stderr (tail):\n" + tail)
        if self.keep:
            problems_note = "kept " + self.dir
            if problems or failed:
                problems.append(problems_note)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return problems
