"""A real local HTTP receiver for webhook alerts (the demo's and the tests'): records each POST, or fails when told."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    at: float
    subject: str
    body: str


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    messages: list[Received] = field(default_factory=list)
    attempts: int = 0
    failing: bool = False  # answer every POST with 500
    fail_next: int = 0  # answer the next N POSTs with 503 (a receiver briefly unavailable)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/alerts"

    def wait_for(self, text: str, timeout: float) -> Received:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.messages if text in m.subject or text in m.body]
            if found:
                return found[0]
            time.sleep(0.1)
        raise TimeoutError(
            f"no alert mentioning {text!r} within {timeout:.0f} s; got {[m.subject for m in self.messages]}"
        )

    def about(self, text: str) -> list[Received]:
        return [m for m in self.messages if text in m.subject or text in m.body]

    def stop(self) -> None:
        self.server.shutdown()


def start_receiver() -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("content-length", 0))
            raw = self.rfile.read(length)
            receiver.attempts += 1
            if receiver.failing or receiver.fail_next > 0:
                receiver.fail_next = max(0, receiver.fail_next - 1)
                self.send_response(500 if receiver.failing else 503)
                self.end_headers()
                return
            body = json.loads(raw or b"{}")
            receiver.messages.append(Received(time.time(), body.get("subject", ""), body.get("body", "")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver
