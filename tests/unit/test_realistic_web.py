"""The realistic web on loopback (benchmarks/realistic_web.py): the same web for the same seed,
skewed hosts, long-tailed latency, and every outcome as a real client (http.client, urllib) meets it."""
import errno
import http.client
import io
import socket
import statistics
import time
import urllib.error
import urllib.request
from collections import Counter
from urllib.parse import urlsplit

import pytest
from PIL import Image

from benchmarks.realistic_web import DEFAULT_SHARES, OUTCOMES, RealisticWeb, _draw_pool

# small pool (one 4000x3000 photo among 40), latencies a hundredth of the real ones
SMALL = {"latency_scale": 0.01, "timeout_hold_s": 1.0, "drip_s": 0.3, "pool_size": 40, "pool_large": 1}
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # never a proxy from the env


@pytest.fixture(scope="module")
def web():
    with RealisticWeb(seed=3, **SMALL) as w:
        yield w


@pytest.fixture(scope="module")
def urls(web):
    return web.url_list(600)


def one(web, urls, outcome):
    return next(u for u in urls if web.expected(u) == outcome)


def connection(url, timeout=2.0):
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout), parts.path


def get(url, timeout=2.0, method="GET"):
    conn, path = connection(url, timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def canonical(web, urls):
    """URLs as (host number, path): ports differ between two webs, the web does not."""
    return [(web.locate(u)[0], urlsplit(u).path) for u in urls]


def test_same_seed_same_web_other_seed_another(web, urls):
    with RealisticWeb(seed=3, **SMALL) as twin, RealisticWeb(seed=4, **SMALL) as other:
        assert twin.ports != web.ports
        twin_urls = twin.url_list(600)
        assert canonical(twin, twin_urls) == canonical(web, urls)
        assert [twin.expected(u) for u in twin_urls] == [web.expected(u) for u in urls]
        assert [twin.plan(*twin.locate(u)[:2]) for u in twin_urls] == [web.plan(*web.locate(u)[:2]) for u in urls]
        assert [twin.body(u) for u in twin_urls[:50]] == [web.body(u) for u in urls[:50]]
        served = [u for u in urls if web.expected(u) == "ok"][:5]
        assert [get(u)[1] for u in served] == [web.body(u) for u in served]
        other_urls = other.url_list(600)
        assert [other.expected(u) for u in other_urls] != [web.expected(u) for u in urls]
    assert _draw_pool(9, 6, 0) == _draw_pool(9, 6, 0)   # no unseeded randomness in the images


def test_a_few_hosts_hold_most_urls(web):
    hosts = Counter(web.locate(u)[0] for u in web.url_list(4000))
    top3 = sum(n for _, n in hosts.most_common(3)) / 4000
    assert 0.5 < top3 < 0.7, top3
    assert len(hosts) >= 28 and hosts.most_common(1)[0][0] == 0


def test_latency_is_long_tailed_and_outcomes_follow_the_shares():
    unscaled = RealisticWeb(seed=3, pool_size=40, pool_large=1)
    plans = [unscaled.plan(unscaled.host_of_number(n), n) for n in range(5000)]
    lat = sorted(p.latency_s for p in plans)
    assert 0.13 < statistics.median(lat) < 0.17
    assert 1.4 < lat[int(0.99 * len(lat))] < 2.8
    seen = Counter(p.outcome for p in plans)
    for outcome, share in DEFAULT_SHARES.items():
        assert abs(seen[outcome] / 5000 - share) < 0.01 + share / 3, (outcome, seen)


def test_ok_is_a_real_image_with_its_type_and_length(web, urls):
    url = one(web, urls, "ok")
    with OPENER.open(url, timeout=2) as resp:
        body = resp.read()
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(len(body))
        assert resp.headers["Content-Type"] == {"jpg": "image/jpeg", "png": "image/png"}[url.rsplit(".", 1)[1]]
    assert body == web.body(url)
    Image.open(io.BytesIO(body)).load()


def test_head_answers_headers_only(web, urls):
    url = one(web, urls, "ok")
    resp, body = get(url, method="HEAD")
    assert resp.status == 200 and body == b"" and int(resp.headers["Content-Length"]) == len(web.body(url))


@pytest.mark.parametrize("status", ["404", "500", "503"])
def test_error_statuses(web, urls, status):
    with pytest.raises(urllib.error.HTTPError) as err:
        OPENER.open(one(web, urls, status), timeout=2)
    assert err.value.code == int(status)


def test_unknown_paths_are_404(web, urls):
    assert get(urls[0].rsplit("/", 1)[0] + "/nothing.jpg")[0].status == 404
    wrong_ext = urls[0][:-3] + ("png" if urls[0].endswith("jpg") else "jpg")
    assert web.expected(wrong_ext) == "unknown" and get(wrong_ext)[0].status == 404


def test_timeout_holds_the_request_past_the_client_timeout(web, urls):
    t0 = time.perf_counter()
    with pytest.raises(TimeoutError):
        get(one(web, urls, "timeout"), timeout=0.3)
    assert time.perf_counter() - t0 < 0.9


def test_timeout_then_the_server_hangs_up(web, urls):
    t0 = time.perf_counter()
    with pytest.raises(http.client.RemoteDisconnected):
        get(one(web, urls, "timeout"), timeout=3)
    assert 0.9 < time.perf_counter() - t0 < 2.5   # held SMALL's 1 s, then closed


def test_drip_ends_with_the_whole_body(web, urls):
    url = one(web, urls, "drip")
    t0 = time.perf_counter()
    resp, body = get(url, timeout=1)
    assert resp.status == 200 and body == web.body(url)
    assert time.perf_counter() - t0 >= 0.5 * web.plan(*web.locate(url)[:2]).drip_s


def test_reset_is_a_connection_reset(web, urls):
    with pytest.raises(ConnectionResetError) as err:
        get(one(web, urls, "reset"))
    assert err.value.errno == errno.ECONNRESET   # an RST, not an orderly close


def test_keep_alive_serves_two_requests_on_one_connection(web, urls):
    a, b = [u for u in urls if web.expected(u) == "ok" and web.locate(u)[0] == 0][:2]
    before = web.stats()["connections"]
    conn, path = connection(a)
    try:
        conn.request("GET", path)
        first = conn.getresponse()
        assert first.read() == web.body(a) and first.headers["Connection"] == "keep-alive"
        sock = conn.sock
        conn.request("GET", urlsplit(b).path)
        assert conn.getresponse().read() == web.body(b)
        assert conn.sock is sock
    finally:
        conn.close()
    assert web.stats()["connections"] == before + 1


def test_only_loopback_is_bound(web):
    assert len(web.bound_addresses()) == web.hosts == 32
    assert {addr for addr, _ in web.bound_addresses()} == {"127.0.0.1"}
    with pytest.raises(ConnectionRefusedError):   # not 0.0.0.0: another loopback address is refused
        socket.create_connection(("127.0.0.2", web.ports[0]), timeout=1).close()


def test_pool_images_decode_and_sizes_are_realistic(web):
    sizes = []
    for im in web.pool:
        with Image.open(io.BytesIO(im.data)) as img:
            img.load()
            assert img.size == im.size and img.format == {"jpg": "JPEG", "png": "PNG"}[im.ext]
        sizes.append(len(im.data))
    small = [s for s, im in zip(sizes, web.pool) if not im.large]
    assert min(small) < 50_000 and max(small) > 200_000
    assert sum(20_000 <= s <= 800_000 for s in small) >= 0.7 * len(small)
    assert {im.ext for im in web.pool} == {"jpg", "png"}
    assert [im.size for im in web.pool if im.large] == [(4000, 3000)]


def test_stats_count_outcomes_and_bytes(web, urls):
    before = web.stats()
    body = get(one(web, urls, "ok"))[1]
    get(one(web, urls, "404"))
    after = web.stats()
    assert after["by_outcome"]["ok"] == before["by_outcome"]["ok"] + 1
    assert after["by_outcome"]["404"] == before["by_outcome"]["404"] + 1
    assert after["bytes_sent"] - before["bytes_sent"] > len(body)
    assert set(after["by_outcome"]) >= set(OUTCOMES)


def test_best_success_rate(web, urls):
    rate = web.best_success_rate(urls)
    assert rate == sum(web.expected(u) in ("ok", "drip") for u in urls) / len(urls)
    assert 0.75 < rate < 0.92


def test_stops_by_itself_after_max_requests():
    with RealisticWeb(seed=3, max_requests=3, **SMALL) as web:
        oks = [u for u in web.url_list(100) if web.expected(u) == "ok"][:4]
        for u in oks[:3]:
            assert get(u)[0].status == 200
        assert web.wait(3)
        with pytest.raises(ConnectionRefusedError):
            get(oks[3])
        assert web.stats()["answered"] == 3


def test_stops_by_itself_after_max_seconds():
    t0 = time.perf_counter()
    with RealisticWeb(seed=3, max_seconds=0.3, **SMALL) as web:
        assert web.wait(3)
    assert time.perf_counter() - t0 < 3
