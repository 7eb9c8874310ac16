"""The backend sees the real client: XCLIENT, PROXY headers towards the backend, and
PROXY headers from a trusted load balancer on a listener."""

import copy
import os
import re
import socket
import struct

from harness import (HOSTNAME, IO_TIMEOUT, PASSWORD, Dialog, Failure, check,
                     client_tls_context, free_ports, to_toml)

ALICE = "alice@example.com"
CLIENT_IP = "127.0.0.7"  # the client's own loopback address; the gateway uses 127.0.0.1
POSTFIX_XCLIENT = "NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT"


def _send_message(d, subject="t"):
    d.cmd("MAIL FROM:<alice@example.com>").expect(250)
    d.cmd("RCPT TO:<someone@example.net>").expect(250)
    d.cmd("DATA").expect(354)
    d.send("Subject: %s\r\n\r\nbody\r\n.\r\n" % subject)
    return d.reply()


def _notes(fx, kind):
    """{connection number: [lines]} of the backend's xclient-N / proxy-N / tls-N files."""
    out = {}
    for name in os.listdir(fx.mail_dir):
        m = re.match(r"%s-(\d+)\.txt$" % kind, name)
        if m:
            with open(os.path.join(fx.mail_dir, name)) as f:
                out[int(m.group(1))] = f.read().splitlines()
    return out


def _conn_raw(fx, n):
    with open(os.path.join(fx.mail_dir, "conn-%d.raw" % n), "rb") as f:
        return f.read()


def _session_conn(fx):
    """The backend connection that carried MAIL (probes only say EHLO and QUIT)."""
    for n in range(1, fx.backend_connections() + 1):
        if b"MAIL FROM" in _conn_raw(fx, n):
            return n
    raise Failure("no backend connection carried MAIL")


# ---------------------------------------------------------------- XCLIENT

def test_xclient_tells_backend_the_real_client(fx):
    fx.add_user(ALICE)
    fx.start({"backend": {"identity": "xclient"}}, backend_args=["--xclient", POSTFIX_XCLIENT])
    d = fx.session("starttls", source=CLIENT_IP)
    client_port = d.sock.getsockname()[1]
    _send_message(d).expect(250, "2.0.0", "QID1")
    d.cmd("QUIT").expect(221)
    n = _session_conn(fx)
    notes = _notes(fx, "xclient")
    check(notes.get(n) == ["ADDR=%s PORT=%d NAME=[UNAVAILABLE] HELO=client.test "
                           "LOGIN=alice@example.com PROTO=ESMTP DESTADDR=127.0.0.1 DESTPORT=%d"
                           % (CLIENT_IP, client_port, fx.port_starttls)],
          "backend's XCLIENT: %r" % notes)
    raw = _conn_raw(fx, n)
    check(re.match(rb"EHLO gw\.test\r\nXCLIENT [^\r\n]+\r\nEHLO client\.test\r\nMAIL FROM:", raw),
          "expected EHLO, XCLIENT, EHLO <client's name>, MAIL: %r" % raw[:400])
    check(b"AUTH" not in raw and PASSWORD.encode() not in raw, "credentials reached the backend")
    check(fx.message(1).endswith(b"body\r\n"), "message: %r" % fx.message(1))


def test_xclient_only_offered_attributes_split_at_512(fx):
    fx.add_user(ALICE)
    fx.start({"backend": {"identity": "xclient"}}, backend_args=["--xclient", "ADDR HELO LOGIN"])
    d = fx.connect("none", source=CLIENT_IP)
    long_name = "h" * 240 + "." + "e" * 240 + ".test"  # a 486-octet HELO name
    d.cmd("EHLO " + long_name).expect(250)
    d.auth_plain(ALICE, PASSWORD).expect(235)
    _send_message(d).expect(250)
    n = _session_conn(fx)
    raw = _conn_raw(fx, n)
    xclient_lines = [l for l in raw.split(b"\r\n") if l.startswith(b"XCLIENT ")]
    check(len(xclient_lines) == 3, "expected 3 XCLIENT commands, got %r" % xclient_lines)
    check(all(len(l) + 2 <= 512 for l in xclient_lines),
          "an XCLIENT line is longer than 512 octets: %r" % [len(l) for l in xclient_lines])
    check(_notes(fx, "xclient")[n] == ["ADDR=%s" % CLIENT_IP, "HELO=%s" % long_name,
                                       "LOGIN=alice@example.com"],
          "XCLIENT attributes: %r" % _notes(fx, "xclient")[n])
    check(b"PORT=" not in raw and b"PROTO=" not in raw, "sent attributes not offered: %r" % raw)
    # a name too long to repeat is not echoed in EHLO after XCLIENT
    check(re.search(rb"\r\nEHLO gw\.test\r\nMAIL FROM:", raw), "EHLO after XCLIENT: %r" % raw)


def test_xclient_values_are_xtext_encoded(fx):
    fx.add_user("o+ne=x@example.com", senders=["one@example.com"])
    fx.start({"backend": {"identity": "xclient"}}, backend_args=["--xclient", POSTFIX_XCLIENT])
    d = fx.session("none", user="o+ne=x@example.com")
    d.cmd("MAIL FROM:<one@example.com>").expect(250)
    raw = fx.wait_for(lambda: [l for l in fx.backend_raw().split(b"\r\n") if b"LOGIN=" in l], 5,
                      "no XCLIENT LOGIN reached the backend")
    check(b"LOGIN=o+2Bne+3Dx@example.com" in raw[0], "LOGIN not xtext-encoded: %r" % raw)


def test_xclient_not_advertised_fails_closed(fx):
    fx.add_user(ALICE)
    fx.start({"backend": {"identity": "xclient"}})  # the backend has no XCLIENT
    d = fx.session("starttls")
    r = d.cmd("MAIL FROM:<alice@example.com>")
    r.expect(421, "4.3.0")
    check(d.closed_within(3), "gateway kept the connection open after 421")
    errors = fx.wait_event("backend.error", lambda e: e.get("failure") == "identity")
    check(errors[0]["level"] == "error" and "XCLIENT" in errors[0]["reason"],
          "backend.error: %r" % errors)
    check(fx.events("backend.identity"), "the probe did not warn that XCLIENT is missing")
    check(b"MAIL FROM" not in fx.backend_raw(), "MAIL reached a backend that cannot get XCLIENT")
    check(fx.messages() == {}, "a message was delivered without the client's identity")


# ---------------------------------------------------------------- PROXY towards the backend

def _proxy_identity(fx, version):
    fx.add_user(ALICE)
    fx.start({"backend": {"identity": "proxy-" + version}}, backend_args=["--proxy-protocol"])
    d = fx.session("implicit", source=CLIENT_IP)
    client_port = d.sock.getsockname()[1]
    _send_message(d).expect(250, "2.0.0", "QID1")
    d.cmd("QUIT").expect(221)
    n = _session_conn(fx)
    notes = _notes(fx, "proxy")
    expected = ("v1 PROXY TCP4 %s 127.0.0.1 %d %d" if version == "v1" else "v2 %s 127.0.0.1 %d %d") \
        % (CLIENT_IP, client_port, fx.port_implicit)
    check(notes.get(n) == [expected], "PROXY header the backend got: %r (want %r)"
          % (notes, expected))
    # capability probes carry the gateway's own address: "... 127.0.0.1 <backend> ..."
    probes = [lines[0].split() for conn, lines in notes.items() if conn != n]
    check(probes and all(fields[-4] == "127.0.0.1" and fields[-1] == str(fx.backend_port)
                         for fields in probes),
          "capability probes should carry the gateway's own address: %r" % probes)
    # behind a PROXY header the backend hears the client's own HELO name
    check(_conn_raw(fx, n).startswith(b"EHLO client.test\r\nMAIL FROM:"),
          "session EHLO: %r" % _conn_raw(fx, n)[:200])
    check(fx.message(1).endswith(b"body\r\n"), "message: %r" % fx.message(1))


def test_proxy_v1_header_to_backend(fx):
    _proxy_identity(fx, "v1")


def test_proxy_v2_header_to_backend(fx):
    _proxy_identity(fx, "v2")


# ---------------------------------------------------------------- PROXY on a listener

def _with_proxy_listener(fx, trusted=("127.0.0.0/8",), tls="none", extra=None):
    port = free_ports(1)[0]
    listeners = [dict(l) for l in fx.config["listener"]]
    listeners.append({"address": "127.0.0.1:%d" % port, "tls": tls, "proxy_protocol": True,
                      "trusted_proxies": list(trusted)})
    overrides = {"listener": listeners}
    for k, v in (extra or {}).items():
        overrides[k] = v
    return port, overrides


def _proxied(port, header, first_bytes=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.sendall(header + first_bytes)
    return Dialog(s)


def _v2(src, sport, dst, dport):
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11, 0, 12]) + socket.inet_aton(src)
            + socket.inet_aton(dst) + struct.pack("!HH", sport, dport))


def test_listener_proxy_v1_address_used_everywhere(fx):
    fx.add_user(ALICE)
    port, overrides = _with_proxy_listener(fx, extra={"backend": {"identity": "xclient"}})
    fx.start(overrides, backend_args=["--xclient", POSTFIX_XCLIENT])
    d = _proxied(port, b"PROXY TCP4 203.0.113.9 192.0.2.1 4242 587\r\n")
    d.reply().expect(220)
    d.ehlo()
    d.auth_plain(ALICE, PASSWORD).expect(235)
    _send_message(d).expect(250)
    d.cmd("QUIT").expect(221)
    connects = fx.events("connect")
    check(any(e.get("client") == "203.0.113.9" and e.get("port") == 4242
              and e.get("proxy") == "127.0.0.1" for e in connects),
          "connect log does not show the carried address: %r" % connects)
    auths = fx.events("auth")
    check(auths and auths[-1].get("client") == "203.0.113.9", "auth log: %r" % auths)
    n = _session_conn(fx)
    check(_notes(fx, "xclient")[n][0].startswith(
        "ADDR=203.0.113.9 PORT=4242 NAME=[UNAVAILABLE] HELO=client.test LOGIN=alice@example.com "
        "PROTO=ESMTP DESTADDR=192.0.2.1 DESTPORT=587"), "XCLIENT: %r" % _notes(fx, "xclient"))


def test_listener_proxy_v2_with_data_in_the_same_segment(fx):
    fx.add_user(ALICE)
    port, overrides = _with_proxy_listener(fx)
    fx.start(overrides)
    # The header and the first command arrive together, as from a busy load balancer.
    d = _proxied(port, _v2("198.51.100.20", 5555, "192.0.2.1", 587), b"EHLO early.test\r\n")
    d.reply().expect(220)
    d.reply().expect(250)
    d.cmd("QUIT").expect(221)
    check(any(e.get("client") == "198.51.100.20" for e in fx.events("connect")),
          "connect log: %r" % fx.events("connect"))


def test_listener_proxy_implicit_tls_behind_the_header(fx):
    fx.add_user(ALICE)
    port, overrides = _with_proxy_listener(fx, tls="implicit")
    fx.start(overrides)
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.sendall(b"PROXY TCP6 2001:db8::9 2001:db8::1 6000 465\r\n")
    s = client_tls_context().wrap_socket(s, server_hostname=HOSTNAME)
    d = Dialog(s, tls=True)
    d.reply().expect(220)
    d.ehlo()
    d.auth_plain(ALICE, PASSWORD).expect(235)
    _send_message(d).expect(250)
    check(any(e.get("client") == "2001:db8::9" for e in fx.events("connect")),
          "connect log: %r" % fx.events("connect"))


def test_listener_proxy_untrusted_peer_is_refused(fx):
    port, overrides = _with_proxy_listener(fx, trusted=("10.0.0.0/8", "2001:db8::/32"))
    fx.start(overrides)
    d = _proxied(port, b"PROXY TCP4 203.0.113.9 192.0.2.1 4242 587\r\n")
    check(d.closed_within(3), "an untrusted peer was not disconnected")
    check(d.leftover == b"", "an untrusted peer got %r" % d.leftover)
    ev = fx.wait_event("proxy.refused")
    check(ev[0]["client"] == "127.0.0.1" and "trusted_proxies" in ev[0]["reason"],
          "proxy.refused: %r" % ev)
    check(not any(e.get("client") == "203.0.113.9" for e in fx.events("connect")),
          "the untrusted header was believed")


def test_listener_proxy_missing_or_bad_header_is_refused(fx):
    port, overrides = _with_proxy_listener(fx)
    fx.start(overrides)
    for first in (b"EHLO client.test\r\n", b"PROXY TCP4 203.0.113.9 192.0.2.1 4242\r\n",
                  b"PROXY TCP4 300.0.113.9 192.0.2.1 1 2\r\n", b"\r\n\r\n\x00\r\nQUIT\n\x13\x11\x00\x0c"):
        d = _proxied(port, first)
        check(d.closed_within(3), "no close after %r" % first)
        check(d.leftover == b"", "got %r after %r" % (d.leftover, first))
    refused = fx.wait_for(lambda: len(fx.events("proxy.refused")) >= 4 and fx.events("proxy.refused"),
                          5, "not every bad header was logged")
    check(all("PROXY" in e["reason"] for e in refused), "reasons: %r" % refused)
    check(not [e for e in fx.events("connect") if e.get("listener", "").endswith(":%d" % port)],
          "a session started without a valid header")


def test_listener_proxy_limits_use_the_carried_address(fx):
    port, overrides = _with_proxy_listener(
        fx, extra={"server": {"hostname": "gw.test", "workers": 2, "max_connections_per_ip": 1}})
    fx.start(overrides)
    a = _proxied(port, b"PROXY TCP4 203.0.113.1 192.0.2.1 1000 587\r\n")
    a.reply().expect(220)
    b = _proxied(port, b"PROXY TCP4 203.0.113.2 192.0.2.1 1000 587\r\n")
    b.reply().expect(220)  # another client behind the same load balancer
    c = _proxied(port, b"PROXY TCP4 203.0.113.1 192.0.2.1 1001 587\r\n")
    c.reply().expect(421, "4.7.0")  # the same client twice
    # The fixture's own start-up probes come from 127.0.0.1 and may have met the limit
    # too; what matters is which carried addresses were refused.
    refused = fx.wait_event("connection.refused", lambda e: e["client"].startswith("203."))
    check([e["client"] for e in refused] == ["203.0.113.1"], "connection.refused: %r" % refused)
    for d in (a, b):
        d.cmd("QUIT").expect(221)


def test_healthcheck_through_a_proxy_listener(fx):
    port, overrides = _with_proxy_listener(fx)
    fx.start(overrides)
    # a config whose only listener is the proxy one: healthcheck sends PROXY UNKNOWN
    only_proxy = copy.deepcopy(fx.config)
    only_proxy["listener"] = [l for l in only_proxy["listener"] if l.get("proxy_protocol")]
    path = os.path.join(fx.dir, "only-proxy.toml")
    with open(path, "w") as f:
        f.write(to_toml(only_proxy))
    p = fx.cli("healthcheck", "--config", path)
    check(p.returncode == 0 and ":%d" % port in p.stdout, "healthcheck: %d %r %r"
          % (p.returncode, p.stdout, p.stderr))
    ev = fx.wait_event("connect", lambda e: e.get("proxy") == "127.0.0.1")
    check(ev[0]["client"] == "127.0.0.1", "PROXY UNKNOWN keeps the peer's address: %r" % ev)
