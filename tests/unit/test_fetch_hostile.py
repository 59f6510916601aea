"""The fetcher against a hostile web, on 127.0.0.1 only: crafted URLs and redirects, DNS
rebinding (a resolver stub), servers that drip, and file reads that must not block or escape."""
import os
import sys
import threading
import time
from urllib.parse import quote

import pytest

from realsyn.udfs.fetch import Deadline, fetch_one, read_file
from realsyn.udfs.url_policy import Target
from tests.http_fixture import Server, fetch_settings, jpeg

CONNECTS: list = []
RECORDING = threading.Event()


def _audit(event, args):
    if event == "socket.connect" and RECORDING.is_set():
        CONNECTS.append(args[1][0])


sys.addaudithook(_audit)


@pytest.fixture
def connects():
    """Every address a socket connects to while the test runs (an audit hook, not a mock)."""
    CONNECTS.clear()
    RECORDING.set()
    yield CONNECTS
    RECORDING.clear()


def settings(**kw):
    """Loopback disallowed unless a test allows it; short deadlines, no retries."""
    return fetch_settings(**{"connect_timeout_s": 0.5, "retries": 0, "allow_loopback": False,
                             "deadline_s": 3.0, **kw})


@pytest.fixture(scope="module")
def server():
    with Server() as s:
        yield s


def port(server) -> int:
    return int(server.base.rsplit(":", 1)[1])


@pytest.mark.parametrize("template", [
    "http://127.0.0.1:{p}\\@example.com/img/a.jpg",
    "http://example.com@127.0.0.1:{p}/img/a.jpg",
    "http://%31%32%37.0.0.1:{p}/img/a.jpg",
    "http://127.0.0.1:{p}/img/a.jpg\u3000",
    "http://127.0.0.1:{p}/img/a.jpg\x0b",
    "\x0chttp://127.0.0.1:{p}/img/a.jpg",
])
def test_crafted_urls_never_reach_loopback_when_it_is_disallowed(server, connects, template):
    got = fetch_one(template.format(p=port(server)), settings())
    assert got.reason == "invalid_url" and got.data is None
    assert connects == []


@pytest.mark.parametrize("literal", ["127.0.0.1", "[::ffff:127.0.0.1]", "0x7f.0.0.1", "2130706433", "127.1"])
def test_every_spelling_of_loopback_is_blocked(server, connects, literal):
    got = fetch_one(f"http://{literal}:{port(server)}/img/a.jpg", settings(), resolver=numeric_only)
    assert got.reason == "blocked_address"
    assert connects == []


def numeric_only(host):
    """A resolver stub for literals: what the C library makes of a numeric host, no DNS."""
    import socket
    return sorted({i[4][0] for i in socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)})


@pytest.mark.parametrize("location,reason", [
    ("http://10.0.0.1/x.jpg", "blocked_address"),
    ("http://[::ffff:10.0.0.1]/x.jpg", "blocked_address"),
    ("http://127.0.0.1:1\\@10.0.0.1/x.jpg", "invalid_url"),
    ("http://user@10.0.0.1/x.jpg", "invalid_url"),
    ("http://100.64.0.1/x.jpg", "blocked_address"),
    ("file:///etc/passwd", "scheme_not_allowed"),
])
def test_crafted_redirects_are_refused_before_any_connection(server, connects, location, reason):
    got = fetch_one(f"{server.base}/redirect-to?{quote(location)}", settings(allow_loopback=True))
    assert got.reason == reason
    assert set(connects) == {"127.0.0.1"}     # the first hop only


def test_dns_rebinding_cannot_move_the_connection(server, connects):
    answers = iter([["127.0.0.1"], ["10.0.0.9"], ["10.0.0.9"]])
    calls = []

    def rebinding(host):
        calls.append(host)
        return next(answers)

    got = fetch_one(f"http://img.test:{port(server)}/img/a.jpg", settings(allow_loopback=True), resolver=rebinding)
    assert got.reason is None and got.data == jpeg()
    assert calls == ["img.test"] and connects == ["127.0.0.1"]   # one lookup, the checked address


def test_a_redirect_hop_is_resolved_and_checked_again(server, connects):
    answers = {"first.test": ["127.0.0.1"], "second.test": ["10.0.0.9"]}
    location = f"http://second.test:{port(server)}/img/b.jpg"
    got = fetch_one(f"http://first.test:{port(server)}/redirect-to?{quote(location)}",
                    settings(allow_loopback=True), resolver=lambda h: answers[h])
    assert got.reason == "blocked_address" and connects == ["127.0.0.1"]


@pytest.mark.parametrize("path", ["/drip-headers", "/drip-interim", "/drip-chunks", "/slowloris"])
def test_one_deadline_covers_the_whole_exchange(server, path):
    s = settings(allow_loopback=True)
    t0 = time.monotonic()
    got = fetch_one(server.base + path, s)
    took = time.monotonic() - t0
    assert got.reason in ("timeout", "bad_response") and got.data is None
    assert took < s.hop_s + 1.0, f"{path} held the fetch {took:.1f}s against a {s.hop_s}s deadline"


def test_retries_and_redirects_share_the_fetch_deadline(server):
    s = settings(allow_loopback=True, retries=5, backoff_s=0.01, deadline_s=2.0, read_timeout_s=1.5)
    t0 = time.monotonic()
    assert fetch_one(server.base + "/drip-headers", s).reason == "timeout"
    assert time.monotonic() - t0 < s.deadline_s + 1.0


def test_interim_responses_are_skipped(server):
    got = fetch_one(server.base + "/interim-then-ok", settings(allow_loopback=True))
    assert got.reason is None and got.data == jpeg()


def file_settings(root):
    return settings(allowed_schemes=["file"], file_root=str(root))


def test_a_fifo_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    done = {}
    worker = threading.Thread(target=lambda: done.update(r=fetch_one((tmp_path / "pipe.jpg").as_uri(),
                                                                     file_settings(tmp_path))), daemon=True)
    worker.start()
    worker.join(10)
    assert "r" in done, "the read blocked on a FIFO"
    assert done["r"].reason == "not_regular_file"


def test_directories_and_devices_are_not_read(tmp_path):
    (tmp_path / "d").mkdir()
    assert fetch_one((tmp_path / "d").as_uri(), file_settings(tmp_path)).reason == "not_regular_file"
    os.symlink("/dev/zero", tmp_path / "zero.jpg")   # escapes the root too: refused by the check
    assert fetch_one((tmp_path / "zero.jpg").as_uri(), file_settings(tmp_path)).reason == "outside_file_root"


def test_the_opened_file_is_checked_not_only_the_name(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_bytes(b"secret")
    os.symlink(tmp_path / "secret.txt", root / "link.jpg")
    target = Target(f"file://{root}/link.jpg", "file", path=str(root / "link.jpg"))  # as if swapped after the check
    got = read_file(target, file_settings(root), Deadline(5))
    assert got.reason == "outside_file_root" and got.data is None


def test_unicode_space_and_vertical_tab_names_cannot_escape(tmp_path):
    (tmp_path / "x.jpg").write_bytes(jpeg())
    for tail in ("\u3000", "\u00a0", "\x0b", "\u2028"):
        os.symlink("/etc/hostname", tmp_path / f"x.jpg{tail}")
        for url in (f"file://{tmp_path}/x.jpg{tail}", (tmp_path / f"x.jpg{tail}").as_uri()):
            got = fetch_one(url, file_settings(tmp_path))
            assert got.reason in ("invalid_url", "outside_file_root") and got.data is None, (repr(tail), url)
    assert fetch_one((tmp_path / "x.jpg").as_uri(), file_settings(tmp_path)).data == jpeg()
