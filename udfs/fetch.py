"""Fetch image URLs politely and safely; every failure becomes a reason, never an exception.

Each hop connects to the address the URL policy checked (udfs/url_policy.py), sends the
request target and Host header from the same parse, and runs under one deadline that
covers the whole exchange: connect, TLS, status line, headers, interim (1xx) responses
and body. The socket re-arms its timeout to the time left before every read and write, so
a server dripping bytes cannot stretch it; a fetch with its redirects and retries has a
deadline of its own. Redirects are followed by hand, each hop checked again. File URLs
are read only when they name a regular file whose opened path is inside `file_root`.
"""
from __future__ import annotations

import http.client
import itertools
import os
import re
import socket
import ssl
import stat
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import urljoin

from realsyn.udfs import declared as d
from realsyn.udfs.url_policy import Refused, Target, UrlPolicy, check_url, inside_root, resolve

OPT_OUT_TOKENS = ("noai", "noimageai")
# A stored response is what the web said, and no code edit fetches it again; bump this when
# what the fetcher asks for or accepts changes (opt-out reading, address classes), so every
# stored response is fetched again under the new rules. 2: scoped and redirect-hop opt-outs,
# link-local and metadata addresses apart from private ones.
REQUEST_RULES_VERSION = 2
REDIRECTS = (301, 302, 303, 307, 308)
MAX_INTERIM = 8          # 1xx responses skipped before the final one
CHUNK = 64 * 1024


@dataclass
class Fetched:
    data: bytes | None
    reason: str | None
    http_status: int | None = None
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class FetchSettings:
    """How every URL is fetched (fetch.* in the config)."""
    SECTION = "fetch"
    user_agent: str
    connect_timeout_s: float
    read_timeout_s: float
    max_bytes: int
    max_redirects: int
    retries: int
    backoff_s: float
    concurrency: int = d.setting("fetch.concurrency_per_task")
    honour_opt_out: bool
    policy: UrlPolicy = d.nested(UrlPolicy)
    deadline_s: float = 30.0

    @property
    def hop_s(self) -> float:
        return self.connect_timeout_s + self.read_timeout_s


class Deadline:
    def __init__(self, seconds: float, within: "Deadline | None" = None):
        at = time.monotonic() + seconds
        self.at: float = min(at, within.at) if within else at

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def passed(self) -> bool:
        return self.remaining() <= 0


class _Armed(socket.socket):
    """Before every socket read or write, the timeout becomes the time left."""

    deadline: Deadline

    def _arm(self) -> None:
        left = self.deadline.remaining()
        if left <= 0:
            raise TimeoutError("deadline passed")
        self.settimeout(left)

    def recv(self, *args):
        self._arm()
        return super().recv(*args)

    def recv_into(self, *args):
        self._arm()
        return super().recv_into(*args)

    def sendall(self, *args):
        self._arm()
        return super().sendall(*args)


class DeadlineSocket(_Armed, socket.socket):
    pass


class DeadlineSSLSocket(_Armed, ssl.SSLSocket):
    def read(self, *args):
        self._arm()
        return super().read(*args)


class FinalResponse(http.client.HTTPResponse):
    """Skips every interim 1xx response (http.client skips only 100), at most MAX_INTERIM."""

    def _read_status(self):
        for _ in range(MAX_INTERIM + 1):
            version, status, reason = super()._read_status()
            if status == 101 or not 100 <= status < 200:
                return version, status, reason
            http.client._read_headers(self.fp)
        raise http.client.HTTPException(f"more than {MAX_INTERIM} interim responses")


_TLS = threading.local()


def tls_context() -> ssl.SSLContext:
    """One verifying context per thread (loading the CA store is not free)."""
    if not hasattr(_TLS, "context"):
        ctx = ssl.create_default_context()
        ctx.sslsocket_class = DeadlineSSLSocket
        _TLS.context = ctx
    return _TLS.context


def connect(target: Target, deadline: Deadline, connect_timeout_s: float) -> socket.socket:
    family = socket.AF_INET6 if ":" in target.address else socket.AF_INET
    sock = DeadlineSocket(family, socket.SOCK_STREAM)
    sock.deadline = deadline
    try:
        sock.settimeout(max(0.001, min(connect_timeout_s, deadline.remaining())))
        sock.connect((target.address, target.port))
        if target.scheme != "https":
            return sock
        tls = tls_context().wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
        tls.deadline = deadline  # type: ignore[attr-defined]
        # The handshake runs inside OpenSSL: a timer closes the socket at the deadline.
        watchdog = threading.Timer(max(0.0, deadline.remaining()), _shutdown, (tls,))
        watchdog.start()
        try:
            tls.settimeout(max(0.001, deadline.remaining()))
            tls.do_handshake()
        finally:
            watchdog.cancel()
        if deadline.passed:
            raise TimeoutError("deadline passed during the TLS handshake")
        return tls
    except BaseException:
        sock.close()
        raise


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


_AGENT_SCOPE = re.compile(r"^[a-z0-9_.\-]+\s*:\s*")


def opted_out(headers: list[tuple[str, str]]) -> bool:
    """An opt-out token in any X-Robots-Tag directive, unscoped or scoped to a crawler
    (`realsyn: noai`, `googlebot: noindex, noimageai`). A scope naming another crawler is
    honoured too: a site that refuses AI use to one crawler is not asked to list them all."""
    value = ",".join(v for k, v in headers if k.lower() == "x-robots-tag").lower()
    return any(_AGENT_SCOPE.sub("", t.strip()) in OPT_OUT_TOKENS for t in value.replace(";", ",").split(","))


def read_file(target: Target, settings: FetchSettings, deadline: Deadline) -> Fetched:
    """A regular file whose opened path (links resolved) is inside file_root, never a FIFO, a
    device or a file with other hard links (its other names cannot be checked)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target.path, flags)
    except FileNotFoundError:
        return Fetched(None, "not_found", detail=target.path)
    except OSError as err:
        return Fetched(None, "read_error", detail=str(err)[:200])
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return Fetched(None, "not_regular_file", detail=target.path)
        if st.st_nlink > 1:   # another name for the same bytes may lie outside file_root
            return Fetched(None, "hard_link", detail=target.path)
        opened = _opened_path(fd, target.path)
        if not inside_root(opened, settings.policy.file_root):
            return Fetched(None, "outside_file_root", detail=opened)
        if st.st_size > settings.max_bytes:
            return Fetched(None, "too_large")
        chunks, total = [], 0
        while True:
            if deadline.passed:
                return Fetched(None, "timeout", detail="file read deadline")
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > settings.max_bytes:
                return Fetched(None, "too_large")
            chunks.append(chunk)
        return Fetched(b"".join(chunks), None)
    except OSError as err:
        return Fetched(None, "read_error", detail=str(err)[:200])
    finally:
        os.close(fd)


def _opened_path(fd: int, path: str) -> str:
    """The path of the file actually opened (Linux: /proc), else the resolved name."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)


def _inflater(encoding: str, first: bytes):
    """gzip, zlib-wrapped deflate (the standard), or raw deflate (what many servers send)."""
    if "gzip" in encoding:
        return zlib.decompressobj(wbits=47)
    zlib_header = len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0
    return zlib.decompressobj(wbits=zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)


def _read_body(resp, settings: FetchSettings) -> Fetched:
    lengths = {v.strip() for v in (resp.getheader("Content-Length") or "").split(",") if v.strip()}
    length = lengths.pop() if len(lengths) == 1 else ",".join(sorted(lengths))   # repeated copies agree
    if length and not re.fullmatch(r"[0-9]{1,19}", length):   # ASCII digits only: "²".isdigit() is True
        return Fetched(None, "malformed_response", resp.status, f"Content-Length {length[:20]!r}")
    if length and int(length) > settings.max_bytes:
        return Fetched(None, "too_large", resp.status, f"Content-Length {length}")
    encoding = (resp.getheader("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", "deflate"):
        return Fetched(None, "unsupported_encoding", resp.status, encoding[:50])
    inflate = None
    chunks, total, head, ended = [], 0, b"", False
    while not ended:
        raw = resp.read1(CHUNK)
        ended = not raw
        if encoding != "identity" and inflate is None:
            raw, head = head + raw, b""
            if len(raw) < 2 and not ended:
                head = raw          # the zlib header is two bytes: wait for the second
                continue
            if not raw:
                break
            inflate = _inflater(encoding, raw)
        elif not raw:
            break
        # Inflate with a bound: a compression bomb stops at max_bytes + 1 bytes.
        try:
            chunk = inflate.decompress(raw, settings.max_bytes + 1 - total) if inflate else raw
        except zlib.error as err:   # not the encoding it claims: the same answer every time
            return Fetched(None, "malformed_response", resp.status, f"{encoding}: {err}"[:200])
        total += len(chunk)
        if total > settings.max_bytes or (inflate and inflate.unconsumed_tail):
            return Fetched(None, "too_large", resp.status)
        chunks.append(chunk)
    return Fetched(b"".join(chunks), None, resp.status)


def exchange(target: Target, settings: FetchSettings, deadline: Deadline) -> tuple[Fetched | None, str | None]:
    """One request on its own connection: (result, None), or (None, redirect location)."""
    sock = connect(target, deadline, settings.connect_timeout_s)
    conn = http.client.HTTPConnection(target.host, target.port)
    conn.sock, conn.response_class = sock, FinalResponse
    try:
        conn.putrequest("GET", target.request, skip_host=True, skip_accept_encoding=True)
        for name, value in (("Host", target.host_header), ("User-Agent", settings.user_agent),
                            ("Accept", "image/*,*/*;q=0.5"), ("Accept-Encoding", "identity"),
                            ("Connection", "close")):
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        # An opt-out on any hop counts, a redirect's included.
        if settings.honour_opt_out and opted_out(resp.getheaders()):
            return Fetched(None, "opt_out", resp.status), None
        if resp.status in REDIRECTS:
            location = resp.getheader("Location")
            if not location:
                return Fetched(None, "bad_redirect", resp.status), None
            return None, location
        if resp.status == 101 or resp.status < 200:
            return Fetched(None, "bad_response", resp.status, "unexpected interim response"), None
        if resp.status >= 400:
            return Fetched(None, f"http_{resp.status}", resp.status), None
        return _read_body(resp, settings), None
    finally:
        conn.close()


def failure(err: BaseException, deadline: Deadline) -> Fetched:
    detail = f"{type(err).__name__}: {err}"[:200]
    if isinstance(err, TimeoutError) or deadline.passed:
        return Fetched(None, "timeout", detail=detail)
    if isinstance(err, ssl.SSLError):  # certificate errors included
        return Fetched(None, "tls_error", detail=detail)
    if isinstance(err, (ConnectionError, http.client.RemoteDisconnected)):
        return Fetched(None, "connection_error", detail=detail)
    if isinstance(err, http.client.HTTPException):
        return Fetched(None, "bad_response", detail=detail)
    if isinstance(err, OSError):
        return Fetched(None, "connection_error", detail=detail)
    raise err


def within_deadline(resolver, deadline: Deadline):
    """`resolver` bounded by the fetch's deadline: name resolution blocks in the C library
    with no timeout of its own, so it runs in a helper thread the fetch stops waiting for."""
    def run(host: str) -> list[str]:
        box: dict = {}

        def work() -> None:
            try:
                box["ok"] = resolver(host)
            except BaseException as err:   # handed to the fetch's thread below
                box["err"] = err
        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        thread.join(max(0.0, deadline.remaining()))
        if thread.is_alive():
            raise Refused("timeout", f"resolving {host} took longer than the fetch's deadline")
        if "err" in box:
            raise box["err"]
        return box["ok"]
    return run


def fetch_http(target: Target, settings: FetchSettings, fetch_deadline: Deadline, resolver=resolve) -> Fetched:
    for _hop in range(settings.max_redirects + 1):
        deadline = Deadline(settings.hop_s, within=fetch_deadline)
        try:
            result, location = exchange(target, settings, deadline)
        except Exception as err:
            return failure(err, deadline)
        if location is None:
            return result if result is not None else Fetched(None, "bad_response")
        try:
            target = check_url(urljoin(target.url, location), settings.policy, resolver)
        except Refused as ref:
            return Fetched(None, ref.reason, detail=f"redirect: {ref}")
        if target.scheme == "file":
            return Fetched(None, "scheme_not_allowed", detail="redirect to a file URL")
    return Fetched(None, "too_many_redirects")


RETRYABLE = ("timeout", "connection_error")


def retryable(result: Fetched) -> bool:
    return result.data is None and (result.reason in RETRYABLE or (result.http_status or 0) >= 500)


def fetch_one(url: str, settings: FetchSettings, resolver=resolve) -> Fetched:
    """Fetch with retries (5xx, timeouts, dropped connections) and exponential backoff,
    all within settings.deadline_s."""
    deadline = Deadline(settings.deadline_s)
    resolver = within_deadline(resolver, deadline)
    try:
        target = check_url(url, settings.policy, resolver)
    except Refused as ref:
        return Fetched(None, ref.reason, detail=str(ref))
    if target.scheme == "file":
        return read_file(target, settings, deadline)
    result = fetch_http(target, settings, deadline, resolver)
    for attempt in range(settings.retries):
        pause = settings.backoff_s * (2 ** attempt)
        if not retryable(result) or deadline.remaining() <= pause:
            break
        time.sleep(pause)
        result = fetch_http(target, settings, deadline, resolver)
    return result


def fetch_many(urls: list[str], settings: FetchSettings) -> list[Fetched]:
    """Order-preserving concurrent fetch of one batch."""
    return list(fetch_iter(urls, settings))


def fetch_iter(urls: list[str], settings: FetchSettings) -> Iterator[Fetched]:
    """fetch_many as a generator: results in input order, each as soon as it is ready.
    At most `concurrency` fetches are ahead of the consumer (running or done and waiting),
    so bodies never pile up while a slow decode or write holds the head."""
    if not urls:
        return
    workers = min(settings.concurrency, len(urls))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        todo = iter(urls)
        ahead = deque(pool.submit(_never_raise, u, settings) for u in itertools.islice(todo, workers))
        while ahead:
            done = ahead.popleft().result()
            for u in itertools.islice(todo, 1):
                ahead.append(pool.submit(_never_raise, u, settings))
            yield done


def fetch_unordered(urls: Iterable[str], settings: FetchSettings) -> Iterator[tuple[int, Fetched]]:
    """(position, result) as each fetch finishes, with at most `concurrency` in flight: a
    slow URL holds one worker, never the others (what the fetch step uses; row order does
    not matter there). `urls` may be a lazy stream (a task's batches one after another), so
    the window stays full across batch boundaries and drains once, at the end."""
    todo = iter(enumerate(urls))
    first = list(itertools.islice(todo, settings.concurrency))
    if not first:
        return
    with ThreadPoolExecutor(max_workers=len(first)) as pool:
        running = {pool.submit(_never_raise, u, settings): i for i, u in first}
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                position = running.pop(future)
                for i, u in itertools.islice(todo, 1):
                    running[pool.submit(_never_raise, u, settings)] = i
                yield position, future.result()


def _never_raise(url: str, settings: FetchSettings) -> Fetched:
    try:
        return fetch_one(url, settings)
    except Exception as err:  # a fetch must never crash the task
        return Fetched(None, "fetch_error", detail=f"{type(err).__name__}: {err}"[:200])
