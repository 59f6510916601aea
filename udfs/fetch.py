"""Fetch image URLs politely and safely; every failure becomes a reason, never an exception.

Per Python worker: one requests.Session (connection pool) per config, a thread pool of
fetch.concurrency_per_task. Redirects are followed by hand so every hop is re-checked
against the URL policy; bodies are streamed with a byte cap and a total deadline.
"""
from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from realsyn.udfs.url_policy import Refused, UrlPolicy, check_url

OPT_OUT_TOKENS = ("noai", "noimageai")


@dataclass
class Fetched:
    data: bytes | None
    reason: str | None
    http_status: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class FetchSettings:
    user_agent: str
    connect_timeout_s: float
    read_timeout_s: float
    max_bytes: int
    max_redirects: int
    retries: int
    backoff_s: float
    concurrency: int
    honour_opt_out: bool
    policy: UrlPolicy

    @classmethod
    def from_conf(cls, fetch: dict) -> "FetchSettings":
        return cls(fetch["user_agent"], float(fetch["connect_timeout_s"]), float(fetch["read_timeout_s"]),
                   int(fetch["max_bytes"]), int(fetch["max_redirects"]), int(fetch["retries"]),
                   float(fetch["backoff_s"]), int(fetch["concurrency_per_task"]),
                   bool(fetch["honour_opt_out"]), UrlPolicy.from_conf(fetch))


_SESSIONS: dict[FetchSettings, requests.Session] = {}


def session_for(settings: FetchSettings) -> requests.Session:
    """One pooled session per worker process and settings."""
    if settings not in _SESSIONS:
        s = requests.Session()
        s.trust_env = False  # no proxies or netrc from the executor's environment
        adapter = HTTPAdapter(pool_connections=settings.concurrency, pool_maxsize=settings.concurrency,
                              max_retries=0)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        s.headers["User-Agent"] = settings.user_agent
        _SESSIONS[settings] = s
    return _SESSIONS[settings]


def opted_out(headers) -> bool:
    value = ",".join(v for k, v in headers.items() if k.lower() == "x-robots-tag").lower()
    return any(tok in [t.strip() for t in value.replace(";", ",").split(",")] for tok in OPT_OUT_TOKENS)


def read_file(url: str, settings: FetchSettings) -> Fetched:
    path = unquote(urlsplit(url).path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(settings.max_bytes + 1)
    except FileNotFoundError:
        return Fetched(None, "not_found", detail=path)
    except (IsADirectoryError, PermissionError, OSError) as err:
        return Fetched(None, "read_error", detail=str(err))
    if len(data) > settings.max_bytes:
        return Fetched(None, "too_large")
    return Fetched(data, None)


def _read_body(resp, settings: FetchSettings, deadline: float) -> Fetched:
    length = resp.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > settings.max_bytes:
        return Fetched(None, "too_large", resp.status_code, f"Content-Length {length}")
    chunks, total = [], 0
    # read1 returns whatever arrived (decoded), so a server dripping one byte at a time
    # (slow loris) meets the deadline check instead of blocking one 64 KiB read for minutes.
    while True:
        chunk = resp.raw.read1(64 * 1024, decode_content=True)
        if not chunk:
            break
        total += len(chunk)
        if total > settings.max_bytes:
            return Fetched(None, "too_large", resp.status_code)
        if time.monotonic() > deadline:
            return Fetched(None, "timeout", resp.status_code, "body deadline")
        chunks.append(chunk)
    return Fetched(b"".join(chunks), None, resp.status_code)


def fetch_http(url: str, settings: FetchSettings, resolver=None) -> Fetched:
    session = session_for(settings)
    current = url
    for _hop in range(settings.max_redirects + 1):
        try:
            check_url(current, settings.policy, *(resolver,) if resolver else ())
        except Refused as ref:
            return Fetched(None, ref.reason, detail=str(ref))
        deadline = time.monotonic() + settings.connect_timeout_s + settings.read_timeout_s
        try:
            with session.get(current, stream=True, allow_redirects=False,
                             timeout=(settings.connect_timeout_s, settings.read_timeout_s)) as resp:
                if resp.is_redirect:
                    location = resp.headers.get("Location")
                    if not location:
                        return Fetched(None, "bad_redirect", resp.status_code)
                    current = urljoin(current, location)
                    continue
                if settings.honour_opt_out and opted_out(resp.headers):
                    return Fetched(None, "opt_out", resp.status_code)
                if resp.status_code >= 400:
                    return Fetched(None, f"http_{resp.status_code}", resp.status_code)
                return _read_body(resp, settings, deadline)
        except (requests.Timeout, socket.timeout, urllib3.exceptions.ReadTimeoutError):
            return Fetched(None, "timeout")
        except (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.HTTPError) as err:
            return Fetched(None, "connection_error", detail=str(err)[:200])
        except requests.ConnectionError as err:
            text = str(err)
            return Fetched(None, "timeout" if "timed out" in text.lower() else "connection_error", detail=text[:200])
        except requests.RequestException as err:
            return Fetched(None, "request_error", detail=str(err)[:200])
    return Fetched(None, "too_many_redirects")


RETRYABLE = ("timeout",)


def fetch_one(url: str, settings: FetchSettings, resolver=None) -> Fetched:
    """Fetch with retries (5xx and timeouts only) and exponential backoff."""
    try:
        scheme = check_url(url, settings.policy, *(resolver,) if resolver else ())
    except Refused as ref:
        return Fetched(None, ref.reason, detail=str(ref))
    if scheme == "file":
        return read_file(url, settings)
    result = fetch_http(url, settings, resolver)
    for attempt in range(settings.retries):
        retryable = result.reason in RETRYABLE or (result.http_status or 0) >= 500 and result.data is None
        if not retryable:
            break
        time.sleep(settings.backoff_s * (2 ** attempt))
        result = fetch_http(url, settings, resolver)
    return result


def fetch_many(urls: list[str], settings: FetchSettings) -> list[Fetched]:
    """Order-preserving concurrent fetch of one batch."""
    return list(fetch_iter(urls, settings))


def fetch_iter(urls: list[str], settings: FetchSettings) -> Iterator[Fetched]:
    """fetch_many as a generator: results in input order, each as soon as it is ready."""
    if not urls:
        return
    workers = min(settings.concurrency, len(urls))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(lambda u: _never_raise(u, settings), urls)


def _never_raise(url: str, settings: FetchSettings) -> Fetched:
    try:
        return fetch_one(url, settings)
    except Exception as err:  # a fetch must never crash the task
        return Fetched(None, "fetch_error", detail=f"{type(err).__name__}: {err}"[:200])
