"""The URL policy: one reading of a URL, global addresses only (the standard library's tables)."""
import ipaddress

import pytest

from realsyn.udfs.url_policy import Refused, UrlPolicy, address_class, check_address, check_url, parse_url

POLICY = UrlPolicy()


def stdlib_non_global_networks() -> list[str]:
    """Every special-purpose range the ipaddress module defines, IPv4 and IPv6."""
    out = []
    for consts in (ipaddress._IPv4Constants, ipaddress._IPv6Constants):
        for name, value in vars(consts).items():
            if name.startswith("__"):
                continue
            for net in value if isinstance(value, list) else [value]:
                out.append(str(ipaddress.ip_network(net)))
    return sorted(set(out))


def samples(net: str) -> list[str]:
    n = ipaddress.ip_network(net)
    return sorted({str(n.network_address), str(n[n.num_addresses // 2]), str(n.broadcast_address)})


@pytest.mark.parametrize("net", stdlib_non_global_networks())
def test_every_special_range_of_the_standard_library_is_blocked(net):
    assert len(stdlib_non_global_networks()) >= 30
    for ip in samples(net):
        with pytest.raises(Refused) as err:
            check_address(ip, POLICY)
        assert err.value.reason == "blocked_address", ip


@pytest.mark.parametrize("embedded", [
    "::ffff:10.0.0.1", "::ffff:127.0.0.1", "2002:a00:1::1", "2002:7f00:1::", "64:ff9b::a00:1",
    "64:ff9b::7f00:1", "::10.0.0.1", "2001:0:4136:e378:8000:63bf:f5ff:fffe",   # Teredo, client 10.0.0.1
    "::ffff:100.64.1.1", "2002:c0a8:101::",
])
def test_ipv6_forms_that_carry_a_blocked_ipv4_address_are_blocked(embedded):
    with pytest.raises(Refused):
        check_address(embedded, POLICY)


@pytest.mark.parametrize("ip", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2002:808:808::1"])
def test_global_addresses_pass(ip):
    check_address(ip, POLICY)


def test_classes_and_what_each_flag_allows():
    assert address_class("100.64.0.1") == "private"            # shared address space
    assert address_class("198.18.0.1") == "reserved"           # benchmarking: never allowed
    assert address_class("::ffff:8.8.8.8") == "reserved"          # mapped: not global (the stdlib's table)
    loopback_ok = UrlPolicy(allow_loopback=True)
    check_address("127.0.0.1", loopback_ok)
    with pytest.raises(Refused):
        check_address("10.0.0.1", loopback_ok)
    private_ok = UrlPolicy(allow_private=True)
    check_address("10.0.0.1", private_ok)
    check_address("fd00::1", private_ok)
    with pytest.raises(Refused):
        check_address("198.51.100.1", UrlPolicy(allow_private=True, allow_loopback=True))


@pytest.mark.parametrize("url", [
    "http://127.0.0.1\\@example.com/x.jpg",          # backslash: readers split the authority differently
    "http://example.com\\x.jpg",
    "http://user@example.com/x.jpg",                 # userinfo
    "http://example.com:80@127.0.0.1/x.jpg",
    "http://%31%32%37.0.0.1/x.jpg",                  # percent-encoded host
    "http://[fe80::1%25eth0]/x.jpg",                 # zone id
    " http://example.com/x.jpg",                     # whitespace anywhere
    "http://example.com/x.jpg\u3000",
    "http://example.com/x.jpg\x0b",
    "http://exa mple.com/x.jpg",
    "http://example.com/a\tb.jpg",
    "http://example.com/\u202ex.jpg",                # bidi override
    "http://example.com/a\u200bb.jpg",               # zero width space
    "http://exa_mple.com/x.jpg",                     # not a host name
    "http://example.com:0/x.jpg",
    "http://[::1/x.jpg",
])
def test_urls_two_parsers_could_read_differently_are_refused(url):
    with pytest.raises(Refused) as err:
        parse_url(url, POLICY)
    assert err.value.reason == "invalid_url"


def test_the_parsed_parts_are_what_the_fetcher_sends():
    t = parse_url("HTTP://Example.COM:8080/dir/caf\u00e9.jpg?q=1&r=%20#frag", POLICY)
    assert (t.scheme, t.host, t.port) == ("http", "example.com", 8080)
    assert t.request == "/dir/caf%C3%A9.jpg?q=1&r=%20"     # non-ASCII encoded once, % kept, no fragment
    assert t.host_header == "example.com:8080"
    assert parse_url("https://b\u00fccher.example/x.jpg", POLICY).host == "xn--bcher-kva.example"
    v6 = parse_url("http://[::1]:81/x", POLICY)
    assert (v6.host, v6.host_header) == ("::1", "[::1]:81")


def test_the_checked_address_is_pinned_and_all_answers_are_checked():
    t = check_url("http://img.test/x.jpg", UrlPolicy(allow_loopback=True), resolver=lambda h: ["127.0.0.1"])
    assert t.address == "127.0.0.1"
    with pytest.raises(Refused) as err:   # one blocked answer among good ones refuses the URL
        check_url("http://img.test/x.jpg", POLICY, resolver=lambda h: ["8.8.8.8", "10.0.0.1"])
    assert err.value.reason == "blocked_address"


def test_file_paths_are_read_after_decoding_and_checked_whole(tmp_path):
    policy = UrlPolicy(allowed_schemes=("file",), file_root=str(tmp_path))
    (tmp_path / "a b.jpg").write_bytes(b"x")
    assert check_url((tmp_path / "a b.jpg").as_uri(), policy).path == str(tmp_path / "a b.jpg")
    (tmp_path / "x.jpg\u3000").symlink_to("/etc/hostname")
    with pytest.raises(Refused) as err:       # encoded: decoded, then the link is resolved and refused
        check_url((tmp_path / "x.jpg\u3000").as_uri(), policy)
    assert err.value.reason in ("outside_file_root", "invalid_url")
    with pytest.raises(Refused) as err:       # raw: refused before anything is resolved
        check_url(f"file://{tmp_path}/x.jpg\u3000", policy)
    assert err.value.reason == "invalid_url"
