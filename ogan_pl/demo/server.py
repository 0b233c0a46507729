"""The demo's web server: the page (ogan_pl/demo/page/) and a small JSON API over ogan_pl.demo.app,
on the standard library's threading HTTP server.

    GET  /               the page (index.html, demo.js, demo.css)
    GET  /api/info       the model, the directions' names and the limits
    POST /api/image      {image, name, drawn}      -> {image}: the upload as the model sees it
    POST /api/sample     {seed, n}                 -> {images}
    POST /api/reconstruct {image, steps}           -> {encoder, inversion, psnr_encoder, psnr_inversion}
    POST /api/interpolate {a, b, frames, steps}    -> {frames}
    POST /api/edit       {image, strengths, steps} -> {edited, unedited}

Images travel as PNG data URLs. Every refusal is {"error": one line} with a 4xx status, shown on the
page; nothing a request sends can make the server print a traceback to it. A body longer than the
limits allow is refused from its Content-Length, before it is read. Bound to a loopback address,
the server answers only requests addressed to that address or to localhost (no DNS rebinding), and
a POST must be JSON (a page of another site cannot send one without the browser asking first).
"""

import base64
import binascii
import ipaddress
import json
import math
import socket
import sys
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ogan_pl.demo.app import Busy, Demo, png
from ogan_pl.utils.errors import UserError

PAGE_DIR = Path(__file__).resolve().parent / "page"
PAGE_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/demo.js": ("demo.js", "text/javascript; charset=utf-8"),
    "/demo.css": ("demo.css", "text/css; charset=utf-8"),
}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PNG_URL = "data:image/png;base64,"
JSON_OVERHEAD = 64 * 1024  # a request's bytes besides its images


def is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return address.is_loopback or bool(getattr(address, "ipv4_mapped", None) and address.ipv4_mapped.is_loopback)


def data_url(image_png: bytes) -> str:
    return PNG_URL + base64.b64encode(image_png).decode("ascii")


def image_bytes(value, key: str) -> bytes:
    """The bytes of a data URL (`data:image/...;base64,...`) sent by the page."""
    if not isinstance(value, str) or not value.startswith("data:") or ";base64," not in value:
        raise UserError(f"{key} must be an image as a data URL (data:image/png;base64,...)")
    try:
        return base64.b64decode(value.split(";base64,", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        raise UserError(f"{key}: its base64 data is damaged; choose the file again") from None


def declared_length(headers) -> int | None:
    """The request's Content-Length, or None if it has none or it is not plain ASCII digits."""
    length = headers.get("Content-Length", "")
    return int(length) if length.isascii() and length.isdigit() else None


class DemoServer(ThreadingHTTPServer):
    daemon_threads = True  # a request still computing does not hold the process at exit

    def __init__(self, demo: Demo, host: str, port: int):
        self.demo = demo
        self.loopback = is_loopback(host)
        self.max_body = 2 * math.ceil(demo.limits.max_upload_kb * 1024 * 4 / 3) + JSON_OVERHEAD  # two images
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), DemoHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def allowed_hosts(self) -> set[str]:
        host, port = self.server_address[:2]
        names = {host, "localhost", "127.0.0.1", f"[{host}]"} if self.loopback else set()
        return {f"{name}:{port}" for name in names}


class DemoHandler(BaseHTTPRequestHandler):
    server: DemoServer
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds a connection may stay silent: idle or half-sent requests do not pile up threads

    # ---------------------------------------------------------------- routing
    def do_GET(self) -> None:
        if not self._host_allowed():
            return
        path = self.path.split("?", 1)[0]
        if path in PAGE_FILES:
            name, kind = PAGE_FILES[path]
            self._send(HTTPStatus.OK, (PAGE_DIR / name).read_bytes(), kind)
        elif path == "/api/info":
            self._json(HTTPStatus.OK, self.server.demo.info())
        else:
            self._error(HTTPStatus.NOT_FOUND, f"{path}: no such page (the demo is at /)")

    def do_POST(self) -> None:
        if not self._host_allowed():
            return
        action = ACTIONS.get(self.path)
        if action is None:
            self._error(HTTPStatus.NOT_FOUND, f"{self.path}: no such action", drain=True)
            return
        if self.headers.get_content_type() != "application/json":
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the request as application/json", drain=True)
            return
        length = declared_length(self.headers)
        if length is None:
            self._error(HTTPStatus.LENGTH_REQUIRED, "a request needs its Content-Length", close=True)
            return
        if length > self.server.max_body:
            kb = self.server.demo.limits.max_upload_kb
            self._error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the request is {math.ceil(length / 1024)} KB; this demo takes images up to {kb} KB "
                "(start ogan-demo with max_upload_kb=N for more)",
                close=True,
            )
            return
        try:
            body = self.rfile.read(length)
        except OSError:  # the client went silent (timeout) or away: nothing to answer
            self.close_connection = True
            return
        if len(body) < length:  # the client closed before sending what it declared
            self.close_connection = True
            return
        try:
            request = json.loads(body)
        except json.JSONDecodeError as err:
            self._error(HTTPStatus.BAD_REQUEST, f"the request is not JSON ({err.msg})")
            return
        except UnicodeDecodeError:
            self._error(HTTPStatus.BAD_REQUEST, "the request is not JSON (not UTF-8 text)")
            return
        except (ValueError, RecursionError):  # a number of thousands of digits, nesting past Python's limit
            self._error(
                HTTPStatus.BAD_REQUEST, "the request is not JSON that this demo reads (too long a number or too deep)"
            )
            return
        demo = self.server.demo
        try:
            if not isinstance(request, dict):
                raise UserError("the request must be a JSON object")
            with demo.turn():
                answer = action(demo, request)
            self._json(HTTPStatus.OK, answer)
        except Busy as err:
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(err))
        except UserError as err:
            self._error(HTTPStatus.BAD_REQUEST, " ".join(str(err).split()))
        except Exception as err:  # noqa: BLE001 - a bug must not reach the page as a traceback
            print(f"ogan-demo: {self.path} failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            self._error(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                f"{self.path} failed ({type(err).__name__}); the terminal running ogan-demo shows why",
            )

    def do_PUT(self) -> None:
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "the demo takes GET and POST only", close=True)

    do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_PUT

    # ---------------------------------------------------------------- answers
    def version_string(self) -> str:
        return "ogan-demo"

    def _host_allowed(self) -> bool:
        allowed = self.server.allowed_hosts()
        if allowed and self.headers.get("Host", "") not in allowed:
            self._error(HTTPStatus.FORBIDDEN, "this demo answers only requests to its own local address", close=True)
            return False
        return True

    def _json(self, status: HTTPStatus, body: dict) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _error(self, status: HTTPStatus, message: str, drain: bool = False, close: bool = False) -> None:
        if drain:  # read a small unwanted body, so the connection can serve the next request
            length = declared_length(self.headers)
            try:
                if length is not None and length <= self.server.max_body:
                    self.rfile.read(length)
                else:
                    close = True
            except OSError:
                close = True
        self.close_connection = self.close_connection or close
        self._json(status, {"error": message})

    def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for name, value in HEADERS.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the tab was closed or reloaded meanwhile
            self.close_connection = True

    def log_message(self, format: str, *args) -> None:
        """Requests are not logged (the terminal shows the address and any failure)."""


def _image(demo: Demo, request: dict, key: str = "image"):
    name = request.get("name")
    return demo.read(
        image_bytes(request.get(key), key), name if isinstance(name, str) else key, request.get("drawn") is True
    )


def _as_urls(result: dict) -> dict:
    return {k: data_url(v) if isinstance(v, bytes) else v for k, v in result.items()}


def check_image(demo: Demo, r: dict) -> dict:
    return {"image": data_url(png(_image(demo, r)[0]))}


def sample(demo: Demo, r: dict) -> dict:
    return {"images": [data_url(p) for p in demo.sample(r.get("seed"), r.get("n"))]}


def reconstruct(demo: Demo, r: dict) -> dict:
    return _as_urls(demo.reconstruct(_image(demo, r), r.get("steps")))


def interpolate(demo: Demo, r: dict) -> dict:
    frames = demo.interpolate(_image(demo, r, "a"), _image(demo, r, "b"), r.get("frames"), r.get("steps", 0))
    return {"frames": [data_url(p) for p in frames]}


def edit(demo: Demo, r: dict) -> dict:
    return _as_urls(demo.edit(_image(demo, r), r.get("strengths"), r.get("steps", 0)))


ACTIONS = {
    "/api/image": check_image,
    "/api/sample": sample,
    "/api/reconstruct": reconstruct,
    "/api/interpolate": interpolate,
    "/api/edit": edit,
}
