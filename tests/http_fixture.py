"""A real HTTP server on 127.0.0.1 serving good images and every kind of misbehaviour."""
from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

DRIP_STEPS, DRIP_PAUSE_S = 80, 0.25   # a dripping reply ends by itself after 20 s

from PIL import Image


def jpeg(w=200, h=150, color=(200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "JPEG")
    return buf.getvalue()


def fetch_settings(**kw):
    """Fetch settings for tests against this server: short timeouts, loopback as given."""
    from realsyn.jobs.core.config import Config
    from realsyn.jobs.core.params import from_config
    from realsyn.udfs.fetch import FetchSettings
    conf = {"user_agent": "realsyn-test/1", "connect_timeout_s": 1.0, "read_timeout_s": 1.0,
            "max_bytes": 100_000, "max_redirects": 3, "retries": 2, "backoff_s": 0.01,
            "concurrency_per_task": 8, "allowed_schemes": ["http", "https"], "file_root": "",
            "allow_private_addresses": False, "allow_loopback": True, "honour_opt_out": True,
            "allow_link_local_addresses": False, "allow_metadata_addresses": False,
            "deadline_s": 30.0}
    conf.update(kw)
    return from_config(FetchSettings, Config({"fetch": conf}))


def picture(n: int) -> bytes:
    """A distinct drawn PNG per number (shapes on a background), always the same bytes."""
    import random
    from realsyn.jobs.corpora.sample_corpus import draw_picture, encode
    return encode(draw_picture(random.Random(n), 160, 120), "PNG")


class Handler(BaseHTTPRequestHandler):
    hits: dict[str, int] = {}
    pic_delay_s = 0.0          # /pic/ and /down/ replies wait this long
    down = False               # /down/ answers 503 while set

    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip(self, head: bytes, unit: bytes) -> None:
        """`head` at once, then `unit` again and again, slowly: every piece is on time, the whole never."""
        try:
            self.wfile.write(head)
            for _ in range(DRIP_STEPS):
                self.wfile.write(unit)
                self.wfile.flush()
                time.sleep(DRIP_PAUSE_S)
        except OSError:
            pass
        self.close_connection = True

    def do_GET(self):
        path, _, query = self.path.partition("?")
        Handler.hits[path] = Handler.hits.get(path, 0) + 1
        if path.startswith("/img/"):
            return self._send(200, jpeg(), {"Content-Type": "image/jpeg"})
        if path.startswith(("/pic/", "/down/")):
            time.sleep(Handler.pic_delay_s)
            if path.startswith("/down/") and Handler.down:
                return self._send(503, b"busy")
            return self._send(200, picture(int(path.rsplit("/", 1)[1].split(".")[0])), {"Content-Type": "image/png"})
        if path == "/ua":
            return self._send(200, self.headers.get("User-Agent", "").encode())
        if path == "/missing":
            return self._send(404, b"nope")
        if path == "/flaky":  # 503 first, then an image: retried
            if Handler.hits[path] == 1:
                return self._send(503, b"busy")
            return self._send(200, jpeg())
        if path == "/always500":
            return self._send(500, b"broken")
        if path == "/slow":
            time.sleep(3)
            return self._send(200, jpeg())
        if path == "/loop":
            return self._send(302, b"", {"Location": "/loop"})
        if path == "/redirect-ok":
            return self._send(301, b"", {"Location": "/img/target.jpg"})
        if path == "/redirect-private":
            return self._send(302, b"", {"Location": "http://10.255.255.1/x.jpg"})
        if path == "/huge":
            return self._send(200, b"\xff" * 300_000)
        if path == "/huge-no-length":
            self.send_response(200)
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"\x00" * 10_000)
            return None
        if path == "/noai":
            return self._send(200, jpeg(), {"X-Robots-Tag": "noai"})
        if path == "/noimageai":
            return self._send(200, jpeg(), {"X-Robots-Tag": "googlebot: noindex, noimageai"})
        if path == "/slowloris":  # headers at once, then a byte now and then: never finishes in time
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(60):
                    self.wfile.write(b"\xff")
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                pass
            return None
        if path == "/redirect-to":  # Location is the (percent-decoded) query, as crafted
            return self._send(302, b"", {"Location": unquote(query)})
        if path == "/drip-headers":
            return self._drip(b"HTTP/1.1 200 OK\r\nX-Slow: ", b"x")
        if path == "/drip-interim":
            return self._drip(b"", b"HTTP/1.1 102 Processing\r\n\r\n")
        if path == "/drip-chunks":
            return self._drip(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\n\xff\r\n")
        if path == "/interim-then-ok":  # two early hints, then the image
            body = jpeg()
            self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" * 2
                             + b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode()
                             + b"\r\nConnection: close\r\n\r\n" + body)
            self.close_connection = True
            return None
        if path == "/noai-scoped":
            return self._send(200, jpeg(), {"X-Robots-Tag": "realsyn: noai"})
        if path == "/noai-on-redirect":   # the opt-out is on the hop, the target says nothing
            return self._send(302, b"", {"Location": "/img/after-optout.jpg", "X-Robots-Tag": "noai"})
        if path == "/length-superscript":   # "²".isdigit() is True in Python
            self.send_response(200)
            self.send_header("Content-Length", "\u00b2")
            self.end_headers()
            self.wfile.write(jpeg())
            self.close_connection = True
            return None
        if path == "/not-gzip":
            return self._send(200, b"this is not gzip at all", {"Content-Encoding": "gzip"})
        if path == "/raw-deflate":   # deflate without the zlib wrapper, as many servers send it
            import zlib
            packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            return self._send(200, packer.compress(jpeg()) + packer.flush(), {"Content-Encoding": "deflate"})
        if path == "/html":
            return self._send(200, b"<html>not an image</html>", {"Content-Type": "text/html"})
        return self._send(404)


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # clients hang up on purpose (too_large)
        pass


class Server:
    def __init__(self):
        Handler.hits, Handler.pic_delay_s, Handler.down = {}, 0.0, False
        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
