"""``inr-study dashboard … --serve``: the same page from a small local web server, which re-reads
MLflow for each ``data.json`` request, so curves, reference curves, BD-rates and decoded crops
follow the trials as they finish."""

import json
import logging
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dashboards.data import StudyData
from dashboards.page import served_payload

log = logging.getLogger(__name__)


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")


def allowed_hosts(host: str, port: int) -> set[str]:
    """``Host`` header values a request to this server may carry: the address it serves and, on
    the loopback, the loopback names. Anything else (a DNS-rebinding page, say) is refused."""
    names = set(LOOPBACK_NAMES) if host in LOOPBACK_NAMES else {host}
    return {f"{name}:{port}" for name in names} | names


def make_server(
    page: str,
    load: Callable[[], StudyData],
    look: Callable[[StudyData], dict],
    host: str = "127.0.0.1",
    port: int = 8050,
) -> ThreadingHTTPServer:
    """A server for ``page`` at ``/`` and fresh runs at ``/data.json``, with what ``look``
    chooses again for them (``served_payload``'s reference curves and notes, decoded crops: a
    growing study's images and runs change); bind it with care: the default is the loopback
    interface only."""
    page_bytes = page.encode()
    hosts: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Host", "").lower() not in hosts:
                self.send_error(403, "unexpected Host header")
                return
            if self.path in ("/", "/index.html"):
                body, kind = page_bytes, "text/html; charset=utf-8"
            elif self.path.split("?")[0] == "/data.json":
                data = load()
                body = json.dumps(served_payload(data, **look(data))).encode()
                kind = "application/json"
            elif self.path == "/favicon.ico":  # browsers ask; "none" is not an error
                self.send_response(204)
                self.end_headers()
                return
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:
            log.debug(format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    hosts.update(allowed_hosts(host, server.server_port))  # port 0: the one the OS chose
    return server
