"""An SMTP sink on 127.0.0.1 for browser tests: speaks enough of RFC 5321 (EHLO/HELO, MAIL,
RCPT, DATA with dot-stuffing, RSET, NOOP, QUIT) for the server's mail client, and keeps each
message it accepts (Python's email parser reads it back)."""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
import socketserver
import threading
import time
from email.message import EmailMessage


class _Handler(socketserver.StreamRequestHandler):
    timeout = 30

    def reply(self, text: str) -> None:
        self.wfile.write((text + "\r\n").encode())

    def handle(self) -> None:
        self.reply("220 sink.test ESMTP test sink")
        sender, recipients = "", []
        for _ in range(1000):  # bounded: a conversation is a dozen commands
            line = self.rfile.readline()
            if not line:
                return
            command = line.decode(errors="replace").rstrip("\r\n")
            verb = re.split(r"[ :]", command, maxsplit=1)[0].upper()
            if verb == "EHLO":
                self.reply("250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8")
            elif verb in ("HELO", "NOOP"):
                self.reply("250 OK")
            elif verb == "RSET":
                sender, recipients = "", []
                self.reply("250 OK")
            elif verb == "MAIL":
                sender = command[command.find("<") + 1 : command.find(">")]
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command[command.find("<") + 1 : command.find(">")])
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                data = bytearray()
                for _ in range(10_000):
                    chunk = self.rfile.readline()
                    if not chunk or chunk in (b".\r\n", b".\n"):
                        break
                    data += chunk[1:] if chunk.startswith(b".") else chunk
                message = email.message_from_bytes(bytes(data), policy=email.policy.default)
                self.server.sink.add(sender, recipients, message)
                sender, recipients = "", []
                self.reply("250 OK queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 command not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.sink = self
        self.port = self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?tls=none"

    def add(self, sender: str, recipients: list[str], message: EmailMessage) -> None:
        with self._lock:
            self.messages.append((sender, recipients, message))

    def wait_for(self, count: int, timeout: float = 15) -> list[tuple[str, list[str], EmailMessage]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"{count} mails expected, {len(self.messages)} arrived")


def code_in(message: EmailMessage) -> str:
    """The XXXX-XXXX code in a mail's body."""
    found = re.search(r"\b([2-9A-Z]{4}-[2-9A-Z]{4})\b", message.get_content())
    assert found, message.get_content()
    return found.group(1)


@contextlib.contextmanager
def smtp_sink():
    sink = SmtpSink()
    thread = threading.Thread(target=sink._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink._server.shutdown()
        sink._server.server_close()
        thread.join(timeout=5)
