#!/usr/bin/env python3
"""A small recording SMTP server that plays the unmodified backend MTA in tests.

It records, for every connection N (counted from 1):
  DIR/conn-N.raw   every byte the peer sent, appended and flushed as it arrives
  DIR/msg-M.eml    each complete message body (dot-stuffing removed), M counted from 1
                   over the whole server; written to a temp name and renamed, so a
                   msg file exists only once its end of data was seen.

Like many legacy MTAs it splits lines on LF alone, so "\\n.\\n" ends DATA just like
"\\r\\n.\\r\\n" does: an SMTP smuggling attempt that gets through a gateway shows up
here as a second message. Standard library only.

Flags make it play other servers: --helo-only (an MTA from before ESMTP), --xclient
(Postfix-style XCLIENT, recorded in DIR/xclient-N.txt), --proxy-protocol (expects a
PROXY v1/v2 header first, recorded in DIR/proxy-N.txt), --starttls (TLS with the given
certificate; DIR/tls-N.txt records the version), --greeting and --capability.

Prints "READY <port>" on stdout once it listens.
"""

import argparse
import asyncio
import ipaddress
import os
import signal
import ssl
import struct
import sys

BANNER = b"220 backend.test ESMTP RecordingBackend\r\n"
EHLO_REPLY = (b"250-backend.test\r\n"
              b"250-PIPELINING\r\n"
              b"250-SIZE 104857600\r\n"
              b"250-8BITMIME\r\n"
              b"250 ENHANCEDSTATUSCODES\r\n")
MAX_LINE = 1 << 20  # generous: the backend must not be the one that chokes
DEFAULT_CAPABILITIES = ["PIPELINING", "SIZE 104857600", "8BITMIME", "ENHANCEDSTATUSCODES"]
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def xtext_decode(text):
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "+":
            out.append(int(text[i + 1:i + 3], 16))
            i += 3
        else:
            out += text[i].encode()
            i += 1
    return out.decode("utf-8", "replace")


async def read_proxy_header(reader):
    """The PROXY v1 or v2 header at the start of a connection, as one line of text."""
    first = await reader.readexactly(1)
    if first == b"P":
        line = first + await reader.readuntil(b"\r\n")
        return "v1 " + line[:-2].decode("ascii", "replace")
    head = first + await reader.readexactly(15)
    if head[:12] != PROXY_V2_SIGNATURE:
        raise ConnectionError("no PROXY header: %r" % head)
    ver_cmd, family, length = struct.unpack("!BBH", head[12:16])
    body = await reader.readexactly(length)
    if ver_cmd & 0x0F == 0:
        return "v2 LOCAL"
    if family == 0x11:
        src, dst, sport, dport = struct.unpack("!4s4sHH", body[:12])
    elif family == 0x21:
        src, dst, sport, dport = struct.unpack("!16s16sHH", body[:36])
    else:
        return "v2 family %#x" % family
    return "v2 %s %s %d %d" % (ipaddress.ip_address(src), ipaddress.ip_address(dst), sport, dport)


class Server:
    def __init__(self, args):
        self.args = args
        self.dir = args.dir
        self.connections = 0
        self.messages = 0
        self.reject = {a.lower() for a in args.reject_rcpt}
        self.banner = ("%s\r\n" % args.greeting).encode() if args.greeting else BANNER
        caps = args.capability or DEFAULT_CAPABILITIES
        if args.xclient:
            caps = caps + ["XCLIENT " + args.xclient]
        self.tls = None
        if args.starttls:
            caps = caps + ["STARTTLS"]
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(args.starttls[0], args.starttls[1])
        lines = ["backend.test"] + caps
        self.ehlo_reply = "".join("250%s%s\r\n" % ("-" if i < len(lines) - 1 else " ", l)
                                  for i, l in enumerate(lines)).encode()

    def note(self, kind, n, text):
        with open(os.path.join(self.dir, "%s-%d.txt" % (kind, n)), "a") as f:
            f.write(text + "\n")

    async def handle(self, reader, writer):
        self.connections += 1
        n = self.connections
        raw = open(os.path.join(self.dir, "conn-%d.raw" % n), "ab", buffering=0)
        try:
            if self.args.proxy_protocol:
                self.note("proxy", n, await read_proxy_header(reader))
            await self.session(reader, writer, raw, n)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            raw.close()
            try:
                writer.close()
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def session(self, reader, writer, raw, n):
        if self.args.greeting_delay > 0:
            await asyncio.sleep(self.args.greeting_delay)
        writer.write(self.banner)
        await writer.drain()
        if not self.banner.startswith(b"220"):
            return

        buf = b""
        in_data = False
        body = []
        mail_from = None
        rcpts = []

        def reply(text):
            writer.write(text if isinstance(text, bytes) else text.encode() + b"\r\n")

        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            raw.write(chunk)
            buf += chunk
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    if len(buf) > MAX_LINE:
                        reply("500 5.5.2 Line too long")
                        buf = b""
                    break
                line_with_end = buf[:nl + 1]
                buf = buf[nl + 1:]
                line = line_with_end[:-1]
                if line.endswith(b"\r"):
                    line = line[:-1]

                if in_data:
                    if line == b".":
                        in_data = False
                        if self.args.close_after_data:
                            writer.transport.abort()
                            return
                        self.messages += 1
                        m = self.messages
                        path = os.path.join(self.dir, "msg-%d.eml" % m)
                        with open(path + ".tmp", "wb") as f:
                            f.write(b"".join(body))
                        os.rename(path + ".tmp", path)
                        body = []
                        mail_from, rcpts = None, []
                        if self.args.data_reply:
                            reply(self.args.data_reply)
                        else:
                            reply("250 2.0.0 Ok: queued as QID%d" % m)
                    else:
                        if line_with_end.startswith(b"."):
                            line_with_end = line_with_end[1:]
                        body.append(line_with_end)
                    continue

                verb, _, arg = line.partition(b" ")
                verb = verb.upper()
                if self.args.helo_only and (verb == b"EHLO" or
                                            (verb in (b"MAIL", b"RCPT") and b"> " in arg)):
                    reply("502 5.5.2 Error: command not recognized" if verb == b"EHLO"
                          else "555 5.5.4 Unsupported option")
                elif verb in (b"EHLO",):
                    mail_from, rcpts = None, []
                    reply(self.ehlo_reply)
                elif verb == b"STARTTLS" and self.tls is not None:
                    ready = b"220 2.0.0 Ready to start TLS\r\n"
                    if self.args.starttls_inject:  # in the same segment as the 220
                        ready += b"250-injected before the handshake\r\n250 XCLIENT ADDR\r\n"
                    reply(ready)
                    await writer.drain()
                    await writer.start_tls(self.tls)
                    self.note("tls", n, writer.get_extra_info("ssl_object").version())
                    buf = b""  # anything pipelined before the handshake is void
                    mail_from, rcpts = None, []
                    break
                elif verb == b"XCLIENT" and self.args.xclient:
                    offered = self.args.xclient.upper().split()
                    attrs = [a.partition("=") for a in arg.decode("ascii", "replace").split()]
                    if not attrs or any(k.upper() not in offered or not eq for k, eq, _ in attrs):
                        reply("501 5.5.4 Bad XCLIENT attribute")
                    else:
                        self.note("xclient", n, " ".join("%s=%s" % (k.upper(), xtext_decode(v))
                                                         for k, _, v in attrs))
                        mail_from, rcpts = None, []
                        reply(self.banner)
                elif verb == b"HELO":
                    mail_from, rcpts = None, []
                    reply("250 backend.test")
                elif verb == b"MAIL":
                    if mail_from is not None:
                        reply("503 5.5.1 Error: nested MAIL command")
                    else:
                        mail_from = arg
                        reply("250 2.1.0 Ok")
                elif verb == b"RCPT":
                    if mail_from is None:
                        reply("503 5.5.1 Error: need MAIL command")
                        continue
                    addr = arg.decode("utf-8", "replace")
                    lt, gt = addr.find("<"), addr.find(">")
                    addr = addr[lt + 1:gt] if 0 <= lt < gt else addr
                    if addr.lower() in self.reject:
                        reply("550 5.1.1 <%s>: Recipient address rejected: "
                              "User unknown in local recipient table" % addr)
                    else:
                        rcpts.append(addr)
                        reply("250 2.1.5 Ok")
                elif verb == b"DATA":
                    if mail_from is None:
                        reply("503 5.5.1 Error: need MAIL command")
                    elif not rcpts:
                        reply("554 5.5.1 Error: no valid recipients")
                    else:
                        in_data = True
                        body = []
                        reply("354 End data with <CR><LF>.<CR><LF>")
                elif verb == b"RSET":
                    mail_from, rcpts = None, []
                    reply("250 2.0.0 Ok")
                elif verb == b"NOOP":
                    reply("250 2.0.0 Ok")
                elif verb == b"QUIT":
                    reply("221 2.0.0 Bye")
                    await writer.drain()
                    return
                elif verb == b"VRFY":
                    reply("252 2.0.0 Backend VRFY")
                else:
                    reply("502 5.5.2 Error: command not recognized")
            await writer.drain()


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", required=True, help="where to record conn-N.raw and msg-N.eml")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--reject-rcpt", action="append", default=[], metavar="ADDR",
                   help="answer RCPT TO:<ADDR> with 550 5.1.1 (repeatable)")
    p.add_argument("--data-reply", default=None, metavar="REPLY",
                   help='reply sent at end of data instead of 250, e.g. "554 5.7.1 Spam"')
    p.add_argument("--close-after-data", action="store_true",
                   help="close the connection at end of data without replying")
    p.add_argument("--greeting-delay", type=float, default=0.0, metavar="SECONDS")
    p.add_argument("--greeting", default=None, metavar="REPLY",
                   help='banner instead of 220, e.g. "421 4.3.2 busy" (then it closes)')
    p.add_argument("--capability", action="append", default=[], metavar="LINE",
                   help="an EHLO capability line; when given, replaces the default set")
    p.add_argument("--helo-only", action="store_true",
                   help="an old MTA: EHLO is not recognized, MAIL/RCPT parameters are refused")
    p.add_argument("--xclient", default=None, metavar="ATTRS",
                   help='advertise and accept XCLIENT with these attributes, e.g. "ADDR NAME"')
    p.add_argument("--proxy-protocol", action="store_true",
                   help="expect a PROXY v1/v2 header at the start of every connection")
    p.add_argument("--starttls", nargs=2, default=None, metavar=("CERT", "KEY"),
                   help="offer STARTTLS with this certificate and key")
    p.add_argument("--starttls-inject", action="store_true",
                   help="send forged replies right behind the 220 to STARTTLS, in the clear")
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    srv = Server(args)
    server = await asyncio.start_server(srv.handle, args.host, args.port,
                                        limit=MAX_LINE, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    print("READY %d" % port, flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    sys.exit(0)
