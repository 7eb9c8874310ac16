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

Prints "READY <port>" on stdout once it listens.
"""

import argparse
import asyncio
import os
import signal
import sys

BANNER = b"220 backend.test ESMTP RecordingBackend\r\n"
EHLO_REPLY = (b"250-backend.test\r\n"
              b"250-PIPELINING\r\n"
              b"250-SIZE 104857600\r\n"
              b"250-8BITMIME\r\n"
              b"250 ENHANCEDSTATUSCODES\r\n")
MAX_LINE = 1 << 20  # generous: the backend must not be the one that chokes


class Server:
    def __init__(self, args):
        self.args = args
        self.dir = args.dir
        self.connections = 0
        self.messages = 0
        self.reject = {a.lower() for a in args.reject_rcpt}

    async def handle(self, reader, writer):
        self.connections += 1
        n = self.connections
        raw = open(os.path.join(self.dir, "conn-%d.raw" % n), "ab", buffering=0)
        try:
            await self.session(reader, writer, raw)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            raw.close()
            try:
                writer.close()
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def session(self, reader, writer, raw):
        if self.args.greeting_delay > 0:
            await asyncio.sleep(self.args.greeting_delay)
        writer.write(BANNER)
        await writer.drain()

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
                if verb in (b"EHLO",):
                    mail_from, rcpts = None, []
                    reply(EHLO_REPLY)
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
