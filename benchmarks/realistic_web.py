"""A realistic web on loopback: many hosts, skewed, slow and unreliable, serving real images.

Every host is a listening port on 127.0.0.1 (never any other address), so any client reaches
it without DNS: `http://127.0.0.1:<port>/img/<n>.jpg`. A few hosts hold most URLs (Zipf).
What a URL does is decided from (seed, host number, n) alone, never from arrival order or
the port, so two clients (ours and img2dataset, say) fetching the same list see the same web:
the same latency (lognormal, median 150 ms, p99 2 s), the same outcome (ok, slow drip, 404,
500/503, a timeout that holds the request, a connection reset) and the same bytes.

Images come from a seeded pool of noise-textured JPEGs and PNGs (tens to hundreds of KB, a
few of several MB), built once per seed and kept in memory and under the system temp dir;
each URL's body is its pool image with the URL written into a comment, so bodies differ.

One asyncio loop in one thread serves every port (HTTP/1.1, keep-alive, GET and HEAD), so
waiting costs nothing and hundreds of concurrent requests fit on two cores. The server is
bounded: it admits at most `max_requests` requests and stops once they are answered, or
after `max_seconds`.

    with RealisticWeb(seed=1) as web:
        urls = web.url_list(10_000)
        best = web.best_success_rate(urls)
        ...                              # fetch them
        print(web.stats())

`python benchmarks/realistic_web.py --urls 1000` serves one and writes its URL list.
"""
from __future__ import annotations

import argparse
import asyncio
import bisect
import functools
import hashlib
import io
import math
import os
import random
import re
import shutil
import socket
import struct
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

HOST = "127.0.0.1"
POOL_VERSION = 1   # bump when pool generation changes: the disk cache is keyed by it
OUTCOMES = ("ok", "drip", "404", "500", "503", "timeout", "reset")
SUCCESS = ("ok", "drip")   # a complete image reaches a patient client
DEFAULT_SHARES = {"404": 0.07, "500": 0.015, "503": 0.015, "timeout": 0.03, "drip": 0.02, "reset": 0.02}
PATH = re.compile(r"/img/(\d+)\.(jpg|png)")
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png"}
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}
GRAIN_STD = 32   # the grain canvas's std; each image scales it to its own
Z99 = 2.3263478740408408   # the standard normal's 99th percentile


def _stable_seed(*parts) -> int:
    """A seed from the parts that is the same in every process (hash() of a str is not)."""
    return int.from_bytes(hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


# -- the image pool -----------------------------------------------------------------------

@dataclass(frozen=True)
class PoolImage:
    ext: str          # "jpg" or "png"
    data: bytes
    size: tuple[int, int]
    large: bool


def _texture(rng, grain, w: int, h: int, amp: float):
    """A smooth random colour field with gaussian grain of std `amp` (PIL RGB): photo-like
    enough that JPEG and PNG sizes come out as a real photo's do. All in PIL's C code, on a
    crop of one shared grain canvas: fresh numpy noise for 12 megapixels costs seconds."""
    import numpy as np
    from PIL import Image, ImageChops
    cells = int(rng.integers(3, 9))
    small = rng.integers(0, 256, (cells, max(2, cells * w // h), 3), dtype=np.uint8)
    base = Image.fromarray(small).resize((w, h), Image.BILINEAR)
    if not amp:
        return base
    x, y = int(rng.integers(0, grain.width - w + 1)), int(rng.integers(0, grain.height - h + 1))
    lut = [max(0, min(255, round(128 + (v - 128) * amp / GRAIN_STD))) for v in range(256)] * 3
    return ImageChops.add(base, grain.crop((x, y, x + w, y + h)).point(lut), 1.0, -128)


def _encode(img, ext: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG" if ext == "jpg" else "PNG", **kw)
    return buf.getvalue()


def _draw_pool(seed: int, size: int, n_large: int) -> list[PoolImage]:
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    tile = np.clip(rng.normal(128, GRAIN_STD, (256, 256, 3)), 0, 255).astype(np.uint8)
    grain = Image.fromarray(np.tile(tile, (17, 17, 1)))   # 4352 px a side: any image's crop fits
    aspects = (4 / 3, 3 / 2, 16 / 9, 1.0, 3 / 4, 2 / 3)
    pool = []
    for i in range(size):
        if i < n_large:   # 4000x3000 photos of several MB; every third a big PNG
            if i % 3 == 2:
                (w, h), ext, amp, kw = (2000, 1500), "png", 5.0, {"compress_level": 1}
            else:
                (w, h), ext = ((4000, 3000) if i % 2 == 0 else (3000, 4000)), "jpg"
                amp, kw = float(rng.uniform(10, 16)), {"quality": int(rng.integers(85, 93))}
            img = _texture(rng, grain, w, h, amp)
        elif rng.random() < 0.75:   # a photo, 240 to 2048 px wide
            ext = "jpg"
            w = int(np.clip(rng.lognormal(math.log(800), 0.45), 240, 2048))
            h = max(120, int(w / aspects[rng.integers(len(aspects))]))
            img = _texture(rng, grain, w, h, float(rng.uniform(3, 16)))
            kw = {"quality": int(rng.integers(70, 93))}
        else:
            ext, kw = "png", {"compress_level": 3}   # level 6: a third more time for 8% less
            w = int(np.clip(rng.lognormal(math.log(360), 0.4), 120, 900))
            h = max(80, int(w / aspects[rng.integers(len(aspects))]))
            if rng.random() < 0.4:   # a graphic: few colours, compresses well
                img = _texture(rng, grain, w, h, 0).point(lambda v: v >> 5 << 5)
            else:
                img = _texture(rng, grain, w, h, float(rng.uniform(2, 10)))
        pool.append(PoolImage(ext, _encode(img, ext, **kw), (w, h), i < n_large))
    return pool


_POOLS: dict[tuple, list[PoolImage]] = {}
_POOLS_LOCK = threading.Lock()


def image_pool(seed: int, size: int = 160, n_large: int = 3) -> list[PoolImage]:
    """The seeded pool, from memory, else from the temp dir cache, else drawn (and cached)."""
    key = (POOL_VERSION, seed, size, n_large)
    with _POOLS_LOCK:
        if key in _POOLS:
            return _POOLS[key]
        folder = os.path.join(tempfile.gettempdir(), "realsyn-realistic-web", "v{}-s{}-n{}-l{}".format(*key))
        pool = _read_pool(folder, size, n_large)
        if pool is None:
            pool = _draw_pool(seed, size, n_large)
            _write_pool(folder, pool)
        _POOLS[key] = pool
        return pool


def _read_pool(folder: str, size: int, n_large: int) -> list[PoolImage] | None:
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    if len(names) != size:
        return None
    pool = []
    for name in names:   # 012-640x480.jpg
        stem, ext = name.rsplit(".", 1)
        i, dims = stem.split("-")
        w, h = map(int, dims.split("x"))
        with open(os.path.join(folder, name), "rb") as f:
            pool.append(PoolImage(ext, f.read(), (w, h), int(i) < n_large))
    return pool


def _write_pool(folder: str, pool: list[PoolImage]) -> None:
    """Into a private folder renamed into place, so a concurrent reader never sees half a pool."""
    parent = os.path.dirname(folder)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent)
    except OSError:   # no writable temp dir: the memory copy serves
        return
    try:
        for i, im in enumerate(pool):
            with open(os.path.join(tmp, f"{i:03d}-{im.size[0]}x{im.size[1]}.{im.ext}"), "wb") as f:
                f.write(im.data)
        os.rename(tmp, folder)
    except OSError:   # another process won the race, or the disk is full
        shutil.rmtree(tmp, ignore_errors=True)


def _tagged(im: PoolImage, tag: bytes) -> bytes:
    """The pool image with `tag` in a comment (JPEG COM segment, PNG tEXt chunk): every URL
    gets its own bytes, so content dedup downstream sees distinct images, still valid files."""
    if im.ext == "jpg":
        return im.data[:2] + b"\xff\xfe" + struct.pack(">H", len(tag) + 2) + tag + im.data[2:]
    chunk = b"tEXt" + b"Comment\x00" + tag
    at = 33   # signature (8) + IHDR chunk (25)
    return im.data[:at] + struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk)) + im.data[at:]


# -- what each URL does -------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    outcome: str        # one of OUTCOMES
    latency_s: float    # before the first byte (scaled)
    image: int          # pool index (also for failures: it fixes the URL's extension)
    drip_s: float       # how long a drip spreads its body over


class RealisticWeb:
    """The web, its URLs and what each does; serving in a background thread while started."""

    def __init__(self, seed: int = 0, hosts: int = 32, *, zipf_s: float = 1.3,
                 latency_median_s: float = 0.15, latency_p99_s: float = 2.0, latency_max_s: float = 20.0,
                 latency_scale: float = 1.0, shares: dict[str, float] | None = None,
                 timeout_hold_s: float = 15.0, drip_s: float = 3.0, drip_pieces: int = 40,
                 pool_size: int = 160, pool_large: int = 3, large_share: float = 0.01,
                 max_requests: int = 500_000, max_seconds: float = 1800.0, idle_timeout_s: float = 30.0,
                 base_port: int = 0):
        """shares: outcome -> share of URLs (OUTCOMES less "ok"; "ok" takes the rest).
        latency_scale multiplies every latency (0.01 for tests); timeout_hold_s (how long a
        "timeout" URL holds its request before closing) and drip_s are not scaled: set them
        against the client's timeouts. base_port: 0 picks free ports, else host i listens
        on base_port + i (stable URLs across runs)."""
        shares = {**DEFAULT_SHARES, **(shares or {})}
        unknown = set(shares) - set(OUTCOMES[1:])
        if unknown or sum(shares.values()) > 1 or min(shares.values()) < 0:
            raise ValueError(f"bad shares {shares}: outcomes {OUTCOMES[1:]}, each >= 0, sum <= 1")
        self.seed, self.hosts = seed, hosts
        self.shares = shares
        self._cuts = list(_cumulative([shares.get(o, 0.0) for o in OUTCOMES[1:]]))
        self._host_cuts = list(_cumulative([1 / (r + 1) ** zipf_s for r in range(hosts)], normalise=True))
        self._mu = math.log(latency_median_s)
        self._sigma = math.log(latency_p99_s / latency_median_s) / Z99
        self.latency_max_s, self.latency_scale = latency_max_s, latency_scale
        self.timeout_hold_s, self.drip_s, self.drip_pieces = timeout_hold_s, drip_s, drip_pieces
        self.pool_size, self.pool_large, self.large_share = pool_size, pool_large, large_share
        self.max_requests, self.max_seconds, self.idle_timeout_s = max_requests, max_seconds, idle_timeout_s
        self.base_port = base_port
        self.pool: list[PoolImage] = []
        self.ports: list[int] = [base_port + i for i in range(hosts)] if base_port else []
        self._port_host = {p: i for i, p in enumerate(self.ports)}
        self._stats = {"requests": 0, "answered": 0, "refused": 0, "connections": 0, "bytes_sent": 0,
                       "in_flight_max": 0, "by_outcome": dict.fromkeys((*OUTCOMES, "unknown"), 0)}
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._sockets: list[tuple[str, int]] = []
        self.stopped = threading.Event()
        self.plan = functools.lru_cache(maxsize=1 << 17)(self.plan)   # per web: a class-level cache would pin webs

    # -- the web's content, port-independent ------------------------------------------

    def plan(self, host: int, n: int) -> Plan:
        """What /img/<n>.* on host number `host` does. Every draw is made in the same order
        whatever the shares, so changing a share leaves latencies and images alone."""
        rng = random.Random(_stable_seed(self.seed, "url", host, n))
        u = rng.random()
        outcome = OUTCOMES[1 + bisect.bisect_right(self._cuts, u)] if u < self._cuts[-1] else "ok"
        latency = min(self.latency_max_s, rng.lognormvariate(self._mu, self._sigma)) * self.latency_scale
        large, pick, drip = rng.random() < self.large_share, rng.random(), rng.uniform(0.5, 1.5)
        n_large = min(self.pool_large, self.pool_size)
        if large and n_large:
            image = int(pick * n_large)
        else:
            image = n_large + int(pick * (self.pool_size - n_large))
        return Plan(outcome, latency, image, drip * self.drip_s)

    def host_of_number(self, n: int) -> int:
        """The host URL number n lives on: Zipf over hosts, host 0 the most popular."""
        u = random.Random(_stable_seed(self.seed, "host", n)).random()
        return min(bisect.bisect_right(self._host_cuts, u), self.hosts - 1)

    def _pool(self) -> list[PoolImage]:
        if not self.pool:
            self.pool = image_pool(self.seed, self.pool_size, self.pool_large)
        return self.pool

    # -- URLs (need the ports: after start(), or with base_port) -------------------------

    def url_list(self, n: int, first: int = 0) -> list[str]:
        """URLs number first .. first+n-1 across the hosts, skewed; the same for the same seed."""
        pool = self._pool()
        out = []
        for k in range(first, first + n):
            host = self.host_of_number(k)
            out.append(f"http://{HOST}:{self._port(host)}/img/{k}.{pool[self.plan(host, k).image].ext}")
        return out

    def locate(self, url: str) -> tuple[int, int, str] | None:
        """(host number, URL number, extension) of one of this web's URLs, else None."""
        parts = urlsplit(url)
        m = PATH.fullmatch(parts.path)
        if parts.hostname != HOST or parts.port not in self._port_host or not m:
            return None
        return self._port_host[parts.port], int(m[1]), m[2]

    def expected(self, url: str) -> str:
        """The outcome a client will meet: one of OUTCOMES, or "unknown" (404, not one of ours)."""
        where = self.locate(url)
        if where is None:
            return "unknown"
        plan = self.plan(where[0], where[1])
        return plan.outcome if self._pool()[plan.image].ext == where[2] else "unknown"

    def body(self, url: str) -> bytes | None:
        """The image bytes the URL serves ("ok" and "drip" URLs), else None."""
        if self.expected(url) not in SUCCESS:
            return None
        where = self.locate(url)
        return self._body(where[0], where[1])

    def _body(self, host: int, n: int) -> bytes:
        return _tagged(self._pool()[self.plan(host, n).image], f"realistic-web {self.seed} {host} {n}".encode())

    def best_success_rate(self, urls: list[str]) -> float:
        """The share of `urls` that yield an image to a client that waits out every latency and
        drip: the best any fetcher can do, since statuses, timeouts and resets are per URL."""
        return sum(self.expected(u) in SUCCESS for u in urls) / max(1, len(urls))

    def _port(self, host: int) -> int:
        if not self.ports:
            raise RuntimeError("the web's ports are known once it is started (or with base_port)")
        return self.ports[host]

    # -- serving ------------------------------------------------------------------------

    def start(self) -> RealisticWeb:
        """Build the pool, bind every port and serve from a background thread; returns once listening."""
        self._pool()
        ready, failure = threading.Event(), []

        def run():
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(ready, failure))
            except BaseException as exc:   # a bind failure: start() raises it
                failure.append(exc)
            finally:
                loop.close()
                ready.set()
                self.stopped.set()

        self._thread = threading.Thread(target=run, name="realistic-web", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not self.stopped.is_set():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:   # the loop closed meanwhile: it stopped by itself
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the web stops by itself (its request or time bound); True if it did."""
        return self.stopped.wait(timeout)

    def __enter__(self) -> RealisticWeb:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stats(self) -> dict:
        """Requests admitted/answered/refused, by outcome, connections, bytes sent, peak concurrency."""
        return {**self._stats, "by_outcome": dict(self._stats["by_outcome"])}

    def bound_addresses(self) -> list[tuple[str, int]]:
        """(address, port) of every listening socket, read from the sockets themselves."""
        return list(self._sockets)

    async def _serve(self, ready: threading.Event, failure: list) -> None:
        self._stop = asyncio.Event()
        tasks: set[asyncio.Task] = set()
        servers = []
        try:
            for i in range(self.hosts):
                servers.append(await asyncio.start_server(
                    functools.partial(self._connection, i, tasks), HOST, self.base_port + i if self.base_port else 0,
                    backlog=1024, reuse_address=True))
        except OSError as exc:
            for s in servers:
                s.close()
            failure.append(exc)
            ready.set()
            return
        self._sockets = [s.sockets[0].getsockname()[:2] for s in servers]
        self.ports = [port for _, port in self._sockets]
        self._port_host = {p: i for i, p in enumerate(self.ports)}
        ready.set()
        try:
            await asyncio.wait_for(self._stop.wait(), self.max_seconds)
        except TimeoutError:
            pass
        for s in servers:
            s.close()
        for t in list(tasks):
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connection(self, host: int, tasks: set, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        tasks.add(task)
        self._stats["connections"] += 1
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_timeout_s)
                except asyncio.LimitOverrunError:
                    await self._reply(writer, 431, b"", "text/plain", False, False)
                    return
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                request = _parse(head)
                if request is None:
                    await self._reply(writer, 400, b"", "text/plain", False, False)
                    return
                method, path, keep, length = request
                if length:   # GET/HEAD carry no body; drop one if sent (bounded)
                    if length > 1 << 20:
                        return
                    await reader.readexactly(length)
                if self._stats["requests"] >= self.max_requests:   # past the bound: not served
                    self._stats["refused"] += 1
                    return
                self._stats["requests"] += 1
                self._in_flight += 1
                self._stats["in_flight_max"] = max(self._stats["in_flight_max"], self._in_flight)
                try:
                    keep = await self._answer(host, method, path, keep, writer) and keep
                finally:
                    self._in_flight -= 1
                    self._stats["answered"] += 1
                    if self._stats["answered"] >= self.max_requests:
                        self._stop.set()
                if not keep:
                    return
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:   # stop() ended us: end normally, or 3.11's stream callback logs it
            pass
        finally:
            tasks.discard(task)
            writer.close()

    async def _answer(self, host: int, method: str, path: str, keep: bool, writer) -> bool:
        """Serve one request; False when the connection must not be reused."""
        m = PATH.fullmatch(path)
        plan = self.plan(host, int(m[1])) if m else None
        if plan is None or self._pool()[plan.image].ext != m[2]:
            self._stats["by_outcome"]["unknown"] += 1
            await self._reply(writer, 404, b"not found\n", "text/plain", method == "HEAD", keep)
            return True
        if method not in ("GET", "HEAD"):
            self._stats["by_outcome"]["unknown"] += 1
            await self._reply(writer, 405, b"", "text/plain", False, keep)
            return True
        self._stats["by_outcome"][plan.outcome] += 1
        await asyncio.sleep(plan.latency_s)
        head_only = method == "HEAD"
        if plan.outcome in ("404", "500", "503"):
            status = int(plan.outcome)
            body = f"<html><body><h1>{status} {REASONS[status]}</h1></body></html>\n".encode()
            await self._reply(writer, status, body, "text/html", head_only, keep)
            return True
        if plan.outcome == "timeout":   # hold the request unanswered, then hang up
            await asyncio.sleep(self.timeout_hold_s)
            return False
        if plan.outcome == "reset":   # linger 0: close() sends RST, the client reads ECONNRESET
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        ext = self._pool()[plan.image].ext
        body = self._body(host, int(m[1]))
        if plan.outcome == "ok" or head_only:
            await self._reply(writer, 200, body, CONTENT_TYPES[ext], head_only, keep)
            return True
        # drip: headers at once, then the body in small pieces spread over plan.drip_s
        await self._reply(writer, 200, body, CONTENT_TYPES[ext], True, keep)
        step = math.ceil(len(body) / self.drip_pieces)
        pause = plan.drip_s / self.drip_pieces
        for at in range(0, len(body), step):
            await asyncio.sleep(pause)
            writer.write(body[at:at + step])
            self._stats["bytes_sent"] += min(step, len(body) - at)
            await writer.drain()
        return True

    async def _reply(self, writer, status: int, body: bytes, ctype: str, head_only: bool, keep: bool) -> None:
        head = (f"HTTP/1.1 {status} {REASONS[status]}\r\nServer: realistic-web\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode()
        writer.write(head)
        sent = len(head)
        if not head_only:
            writer.write(body)
            sent += len(body)
        self._stats["bytes_sent"] += sent
        await writer.drain()


def _parse(head: bytes) -> tuple[str, str, bool, int] | None:
    """(method, path without query, keep-alive?, body length) of a request head, None if malformed."""
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip().lower()
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return None
    if not version.startswith("HTTP/1.") or length < 0:
        return None
    if target.startswith(("http://", "https://")):   # absolute form, as proxies send it
        target = urlsplit(target).path or "/"
    tokens = {t.strip() for t in headers.get("connection", "").split(",")}
    keep = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    return method, target.split("?", 1)[0], keep, length


def _cumulative(weights: list[float], normalise: bool = False):
    total = sum(weights) if normalise else 1.0
    acc = 0.0
    for w in weights:
        acc += w / total
        yield acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hosts", type=int, default=32)
    ap.add_argument("--urls", type=int, default=1000)
    ap.add_argument("--out", default="realistic-web-urls.txt")
    ap.add_argument("--latency-scale", type=float, default=1.0)
    ap.add_argument("--max-seconds", type=float, default=1800.0)
    ap.add_argument("--base-port", type=int, default=0, help="host i on base_port+i (default: free ports)")
    a = ap.parse_args()
    t0 = time.perf_counter()
    with RealisticWeb(a.seed, a.hosts, latency_scale=a.latency_scale, max_seconds=a.max_seconds,
                      base_port=a.base_port) as web:
        urls = web.url_list(a.urls)
        with open(a.out, "w") as f:
            f.write("\n".join(urls) + "\n")
        print(f"serving {a.hosts} hosts on {HOST}, ports {min(web.ports)}..{max(web.ports)} (ready in "
              f"{time.perf_counter() - t0:.1f} s); {a.urls} URLs in {a.out}; best success rate "
              f"{web.best_success_rate(urls):.3f}; Ctrl-C stops", flush=True)
        try:
            web.wait()
        except KeyboardInterrupt:
            pass
        print(web.stats())


if __name__ == "__main__":
    main()
