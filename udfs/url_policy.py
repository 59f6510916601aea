"""Which URLs the fetcher may touch, read one way only.

A URL is parsed once, here, into a `Target`; the fetcher connects to the target's parts
and never re-reads the string, so the host checked is the host connected to. Anything two
parsers could read differently (backslashes, userinfo, whitespace or control characters,
percent-encoded hosts) is refused. Every resolved address must be global unless the
policy allows its class, IPv4 addresses embedded in IPv6 included; the fetcher connects
to the address that was checked (no second lookup, so DNS rebinding cannot reach a
blocked range). Checked again on every redirect hop.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from realsyn.udfs import declared as d

DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters a request target may carry as they are (RFC 3986 unreserved, sub-delims, ':@/?%').
TARGET_SAFE = "/?:@!$&'()*+,;=-._~%"
HOST_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
SHARED_SPACE = ipaddress.ip_network("100.64.0.0/10")   # carrier-grade NAT: not global, not "private"
# Cloud instance-metadata endpoints (AWS, ECS, AWS IPv6, Alibaba, Azure's wire server): a
# fetch there can read the node's credentials, so no address switch but their own opens them.
METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "168.63.129.16"))


def real_root(root: str | None) -> str:
    """The file root with its links resolved ("" for none), as every check compares it."""
    return os.path.realpath(root) if root else ""


@dataclass(frozen=True, kw_only=True)
class UrlPolicy:
    """Which URLs may be fetched (fetch.* in the config)."""
    SECTION = "fetch"
    allowed_schemes: tuple[str, ...] = ("http", "https")
    file_root: str = d.converted(real_root, default="")
    allow_private: bool = d.setting("fetch.allow_private_addresses", default=False)
    allow_loopback: bool = False
    allow_link_local: bool = d.setting("fetch.allow_link_local_addresses", default=False)
    allow_metadata: bool = d.setting("fetch.allow_metadata_addresses", default=False)


class Refused(Exception):
    """The URL must not be fetched; .reason is the ledger reason."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail or reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """One parsed URL: what the policy checked is what the fetcher uses."""

    url: str            # as given (for redirects: urljoin base)
    scheme: str
    host: str = ""      # ASCII, lower case; IPv6 without brackets
    port: int = 0
    request: str = "/"  # path and query, ASCII (non-ASCII percent-encoded)
    path: str = ""      # file URLs: the decoded local path
    address: str = ""   # http(s): the checked address to connect to

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS.get(self.scheme) else f"{host}:{self.port}"


def unsafe_character(text: str) -> str | None:
    """The first character two URL readers could disagree on, or None."""
    for ch in text:
        if ch == "\\" or ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp", "Cs", "Co", "Cn"):
            return ch
    return None


def parse_url(url, policy: UrlPolicy) -> Target:
    """The one reading of a URL, or Refused('invalid_url' | 'scheme_not_allowed' | ...)."""
    if not url or not isinstance(url, str):
        raise Refused("invalid_url", "empty")
    bad = unsafe_character(url)
    if bad is not None:
        raise Refused("invalid_url", f"character U+{ord(bad):04X}")
    try:
        parts = urlsplit(url)
    except ValueError as err:
        raise Refused("invalid_url", str(err)) from None
    scheme = parts.scheme.lower()
    if scheme not in policy.allowed_schemes:
        raise Refused("scheme_not_allowed", scheme or "(none)")
    if scheme == "file":
        return _file_target(url, parts, policy)
    if scheme not in DEFAULT_PORTS:
        raise Refused("scheme_not_allowed", scheme)
    netloc = parts.netloc
    if "@" in netloc:
        raise Refused("invalid_url", "credentials in URL")
    if "%" in netloc:
        raise Refused("invalid_url", "percent-encoded host")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as err:
        raise Refused("invalid_url", str(err)) from None
    if not host:
        raise Refused("invalid_url", "no host")
    host = _ascii_host(host, netloc)
    if port == 0:
        raise Refused("invalid_url", "port 0")
    request = quote(parts.path or "/", safe=TARGET_SAFE) + (
        "?" + quote(parts.query, safe=TARGET_SAFE) if parts.query else "")
    if not request.startswith("/"):
        raise Refused("invalid_url", "path does not start with /")
    return Target(url, scheme, host, port or DEFAULT_PORTS[scheme], request)


def _ascii_host(host: str, netloc: str) -> str:
    if netloc.startswith("["):   # IPv6 literal: the address itself, nothing else
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise Refused("invalid_url", "bad IPv6 literal") from None
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise Refused("invalid_url", "host is not a valid international name") from None
    if not set(ascii_host) <= HOST_CHARS or ascii_host.startswith(".") or ".." in ascii_host:
        raise Refused("invalid_url", f"host {ascii_host!r}")
    return ascii_host


def _file_target(url: str, parts, policy: UrlPolicy) -> Target:
    if not policy.file_root:
        raise Refused("scheme_not_allowed", "file URLs need fetch.file_root")
    if parts.netloc not in ("", "localhost"):
        raise Refused("invalid_url", "remote file URL")
    try:
        path = unquote(parts.path, errors="strict")
    except UnicodeDecodeError:
        raise Refused("invalid_url", "path is not UTF-8") from None
    bad = unsafe_character(path.replace(" ", "_"))   # %20 is a plain space in a file name
    if bad is not None:
        raise Refused("invalid_url", f"character U+{ord(bad):04X} in the path")
    return Target(url, "file", path=path)


def inside_root(real_path: str, root: str) -> bool:
    return os.path.commonpath([real_path, root]) == root


def embedded_ipv4(addr: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries: mapped, 6to4, Teredo, NAT64, IPv4-compatible."""
    out = [a for a in (addr.ipv4_mapped, addr.sixtofour) if a is not None]
    if addr.teredo:
        out.extend(addr.teredo)
    if addr in NAT64 or (addr in IPV4_COMPATIBLE and int(addr) > 1):
        out.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return out


def address_class(ip: str) -> str:
    """'loopback', 'private', 'link_local', 'metadata', 'reserved' (never allowed) or 'public'.
    An IPv6 address carrying an IPv4 one gets the stricter of the two classes."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    kinds = [_own_class(addr)]
    if isinstance(addr, ipaddress.IPv6Address):
        kinds += [_own_class(a) for a in embedded_ipv4(addr)]
    for kind in ("reserved", "metadata", "link_local", "private", "loopback"):
        if kind in kinds:
            return kind
    return "public"


def _own_class(addr) -> str:
    if addr in METADATA:
        return "metadata"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link_local"
    if addr.is_unspecified or addr.is_multicast or addr.is_reserved or getattr(addr, "is_site_local", False):
        return "reserved"
    if addr in SHARED_SPACE or _is_private_use(addr):
        return "private"
    if addr.is_global:
        return "public"
    return "reserved"   # documentation, benchmarking, protocol assignments...: never a fetch target


def _is_private_use(addr) -> bool:
    """RFC 1918 and unique-local space: what allow_private_addresses is for."""
    if isinstance(addr, ipaddress.IPv4Address):
        return any(addr in ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
    return addr in ipaddress.ip_network("fc00::/7")


def check_address(ip: str, policy: UrlPolicy) -> None:
    kind = address_class(ip)
    if kind == "public":
        return
    if kind == "loopback" and policy.allow_loopback:
        return
    if (kind == "private" and policy.allow_private or kind == "link_local" and policy.allow_link_local
            or kind == "metadata" and policy.allow_metadata):
        return
    raise Refused("blocked_address", f"{ip} is {kind}")


def resolve(host: str) -> list[str]:
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})
    except (socket.gaierror, UnicodeError) as err:
        raise Refused("dns_error", str(err)) from None


def check_url(url: str, policy: UrlPolicy, resolver=resolve) -> Target:
    """The parsed target, with the address to connect to pinned, or raise Refused."""
    target = parse_url(url, policy)
    if target.scheme == "file":
        real = os.path.realpath(target.path)
        if not inside_root(real, policy.file_root):
            raise Refused("outside_file_root", real)
        return target
    addresses = resolver(target.host)
    if not addresses:
        raise Refused("dns_error", "no address")
    for ip in addresses:   # all of them: a mixed answer is refused, whichever would be used
        check_address(ip, policy)
    return Target(target.url, target.scheme, target.host, target.port, target.request, address=addresses[0])
