"""TLS session resumption (issue 7 item 2): tickets are sealed with the gateway's own
keys, shared by every worker and kept across reloads ([tls] session_tickets,
ticket_key_rotation); a resumed handshake is logged and counted. Python's ssl module
(OpenSSL) is the client."""

import socket

from harness import HOSTNAME, Dialog, check, client_tls_context, free_ports


def _connect(fx, ctx, session=None):
    s = socket.create_connection(("127.0.0.1", fx.port_implicit), timeout=10)
    t = ctx.wrap_socket(s, server_hostname=HOSTNAME, session=session)
    d = Dialog(t, tls=True)
    d.reply().expect(220)  # the TLS 1.3 ticket arrives with the first records read
    d.cmd("EHLO client.test").expect(250)
    reused, new_session = t.session_reused, t.session
    d.cmd("QUIT").expect(221)
    t.close()
    return reused, new_session


def test_implicit_tls_sessions_resume_on_every_worker(fx):
    fx.start()  # two workers, each with its own SO_REUSEPORT listening socket
    ctx = client_tls_context()
    reused, session = _connect(fx, ctx)
    check(not reused, "the first connection cannot be a resumption")
    check(session is not None and session.has_ticket, "no session ticket was issued")
    results = []
    for _ in range(12):  # new source ports spread the connections over both workers
        reused, _ = _connect(fx, ctx, session)
        results.append(reused)
    check(all(results), "not every connection resumed the first session: %r" % results)


def test_sessions_resume_after_a_reload(fx):
    # A SIGHUP loads a new TLS context; the ticket keys stay, so clients keep resuming.
    fx.start()
    ctx = client_tls_context()
    _, session = _connect(fx, ctx)
    check(session is not None and session.has_ticket, "no session ticket was issued")
    event = fx.reload({"tls": {"ticket_key_rotation": "6h"}})
    check(event.get("result") == "success", "reload: %r" % event)
    reused, _ = _connect(fx, ctx, session)
    check(reused, "the session from before the reload was not resumed")


def test_session_tickets_off_means_full_handshakes(fx):
    fx.start({"tls": {"session_tickets": False}})
    ctx = client_tls_context()
    reused, session = _connect(fx, ctx)
    check(not reused, "the first connection cannot be a resumption")
    check(session is None or not session.has_ticket, "a ticket was issued with tickets off")
    reused, _ = _connect(fx, ctx, session)
    check(not reused, "a session was resumed with session_tickets = false")


def test_resumption_is_logged_and_counted(fx):
    (port,) = free_ports(1)
    fx.start({"metrics": {"address": "127.0.0.1:%d" % port}})
    ctx = client_tls_context()
    _, session = _connect(fx, ctx)
    for _ in range(3):
        reused, _ = _connect(fx, ctx, session)
        check(reused, "not resumed")
    # the last four: the harness's start-up check made a handshake of its own
    events = fx.wait_for(lambda: len(fx.events("tls")) >= 4 and fx.events("tls")[-4:], 5,
                         "not every handshake was logged")
    check([e.get("resumed") for e in events] == [False, True, True, True],
          "resumed flags in the tls events: %r" % [e.get("resumed") for e in events])
    p = fx.run_tool(["curl", "-sS", "--max-time", "10", "http://127.0.0.1:%d/metrics" % port])
    check(p.returncode == 0, "curl /metrics failed: %s" % p.stderr)
    values = [line.split()[-1] for line in p.stdout.splitlines()
              if line.startswith("portcullis_tls_resumed_total")]
    check(values == ["3"], "portcullis_tls_resumed_total: %r" % values)
