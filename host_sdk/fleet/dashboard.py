"""The live dashboard: a small HTTP server (stdlib) over a FleetHub, and one page that
polls it and draws the plots itself on canvases (host_sdk.fleet.page; no third-party code).

    GET /                  the page (?rig=NAME opens one rig's panels)
    GET /api/state         {"fleet", "rigs": {name: state}, "quantities": {key: [label, unit]}}
    GET /api/points?since=N  {"seq": newest, "points": {rig: [point, ...]}} (seq > N)
    GET /api/events?n=50   the last board events of every rig

It binds 127.0.0.1 unless told otherwise. It is read-only: nothing on it controls a rig.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from host_sdk.fleet.hub import FleetHub
from host_sdk.fleet.live import QUANTITIES
from host_sdk.fleet.page import PAGE

__all__ = ["DashboardServer"]

log = logging.getLogger("stressrig.fleet.dashboard")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet: a poll every 0.5 s
        log.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, body: bytes, ctype: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data: Any) -> None:
        self._send(json.dumps(data, default=str).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        hub = self.server.hub
        try:
            if url.path in ("/", "/index.html"):
                page = PAGE.replace("__TITLE__", self.server.title)
                self._send(page.encode(), "text/html; charset=utf-8")
            elif url.path == "/api/state":
                self._json({"fleet": hub.fleet, "rigs": hub.states(), "quantities": QUANTITIES})
            elif url.path == "/api/points":
                seq, pts = hub.points_since(int(q.get("since", "0") or 0))
                self._json({"seq": seq, "points": pts})
            elif url.path == "/api/events":
                self._json({"events": hub.events(int(q.get("n", "50") or 50))})
            else:
                self._send(b"not found: see / for the dashboard\n", "text/plain", 404)
        except ValueError as e:
            self._send(f"bad request: {e}\n".encode(), "text/plain", 400)
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: FleetHub
    title: str


class DashboardServer:
    """Serve `hub` on http://HOST:PORT/ from a background thread (port 0: any free one)."""

    def __init__(
        self, hub: FleetHub, *, host: str = "127.0.0.1", port: int = 8765, title: str = ""
    ) -> None:
        self.server = _Server((host, port), _Handler)
        self.server.hub = hub
        self.server.title = title or f"stressrig: {hub.fleet}"
        self.host = host
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=2.0)
