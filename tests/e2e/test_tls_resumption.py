"""TLS session resumption (issue 7 item 2): tickets are issued and accepted by every
worker, since all workers share one TLS context (and so its ticket keys, which
BoringSSL rotates by itself)."""

import socket

from harness import HOSTNAME, Dialog, check, client_tls_context


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
