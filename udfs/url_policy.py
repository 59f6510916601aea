"""Which URLs the fetcher may touch: schemes, file roots, and address classes.

Checked before any connection and again on every redirect hop, against the resolved
IP addresses (so a hostname that resolves to 10.x is blocked like the literal).
"""
from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class UrlPolicy:
    allowed_schemes: tuple[str, ...] = ("http", "https")
    file_root: str = ""
    allow_private: bool = False
    allow_loopback: bool = False

    @classmethod
    def from_conf(cls, fetch: dict) -> "UrlPolicy":
        root = fetch.get("file_root") or ""
        return cls(tuple(fetch["allowed_schemes"]), os.path.realpath(root) if root else "",
                   bool(fetch["allow_private_addresses"]), bool(fetch["allow_loopback"]))


class Refused(Exception):
    """The URL must not be fetched; .reason is the ledger reason."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail or reason)
        self.reason = reason


def address_class(ip: str) -> str:
    """'loopback', 'private', 'link_local', 'reserved' or 'public'."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if addr.is_unspecified or addr.is_multicast:
        return "reserved"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link_local"
    if addr.is_private:
        return "private"
    if addr.is_reserved:
        return "reserved"
    return "public"


def check_address(ip: str, policy: UrlPolicy) -> None:
    kind = address_class(ip)
    if kind == "public":
        return
    if kind == "loopback" and policy.allow_loopback:
        return
    if kind in ("private", "link_local") and policy.allow_private:
        return
    raise Refused("blocked_address", f"{ip} is {kind}")


def resolve(host: str) -> list[str]:
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})
    except (socket.gaierror, UnicodeError) as err:
        raise Refused("dns_error", str(err)) from None


def check_url(url: str, policy: UrlPolicy, resolver=resolve) -> str:
    """Return the scheme when the URL may be fetched, else raise Refused."""
    if not url or not isinstance(url, str):
        raise Refused("invalid_url", "empty")
    if any(ch in url for ch in "\r\n\t\x00"):
        raise Refused("invalid_url", "control characters")
    try:
        parts = urlsplit(url.strip())
    except ValueError as err:
        raise Refused("invalid_url", str(err)) from None
    scheme = parts.scheme.lower()
    if scheme not in policy.allowed_schemes:
        raise Refused("scheme_not_allowed", scheme or "(none)")
    if scheme == "file":
        if not policy.file_root:
            raise Refused("scheme_not_allowed", "file URLs need fetch.file_root")
        if parts.netloc not in ("", "localhost"):
            raise Refused("invalid_url", "remote file URL")
        real = os.path.realpath(unquote(parts.path))
        if os.path.commonpath([real, policy.file_root]) != policy.file_root:
            raise Refused("outside_file_root", real)
        return scheme
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as err:
        raise Refused("invalid_url", str(err)) from None
    if not host:
        raise Refused("invalid_url", "no host")
    for ip in resolver(host):
        check_address(ip, policy)
    return scheme
