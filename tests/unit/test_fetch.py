import pytest

from realsyn.udfs.fetch import fetch_many, fetch_one
from realsyn.udfs.url_policy import Refused, UrlPolicy, address_class, check_url
from tests.http_fixture import Server, fetch_settings


def settings(**kw):
    return fetch_settings(**kw)


@pytest.fixture(scope="module")
def server():
    with Server() as s:
        yield s


@pytest.mark.parametrize("path,reason", [
    ("/img/a.jpg", None), ("/missing", "http_404"), ("/slow", "timeout"), ("/loop", "too_many_redirects"),
    ("/huge", "too_large"), ("/huge-no-length", "too_large"), ("/noai", "opt_out"),
    ("/noimageai", "opt_out"), ("/redirect-private", "blocked_address"), ("/always500", "http_500"),
    ("/slowloris", "timeout"),
])
def test_fetch_outcomes_against_a_real_server(server, path, reason):
    got = fetch_one(server.base + path, settings())
    assert got.reason == reason
    assert (got.data is not None) == (reason is None)


def test_redirect_is_followed_and_5xx_retried(server):
    assert fetch_one(server.base + "/redirect-ok", settings()).reason is None
    assert fetch_one(server.base + "/flaky", settings()).reason is None


def test_non_image_is_fetched_then_left_to_the_decoder(server):
    got = fetch_one(server.base + "/html", settings())
    assert got.reason is None and got.data.startswith(b"<html>")


def test_user_agent_comes_from_conf(server):
    assert fetch_one(server.base + "/ua", settings()).data == b"realsyn-test/1"


def test_loopback_blocked_by_default(server):
    got = fetch_one(server.base + "/img/a.jpg", settings(allow_loopback=False))
    assert got.reason == "blocked_address"


def test_batch_keeps_order_and_never_raises(server):
    urls = [server.base + "/img/1.jpg", "not a url", server.base + "/missing", "", "gopher://x/"]
    reasons = [f.reason for f in fetch_many(urls, settings())]
    assert reasons == [None, "invalid_url", "http_404", "invalid_url", "scheme_not_allowed"]


@pytest.mark.parametrize("ip,kind", [("127.0.0.1", "loopback"), ("10.1.2.3", "private"), ("192.168.0.1", "private"),
                                     ("172.16.5.4", "private"), ("169.254.169.254", "metadata"), ("169.254.1.1", "link_local"),
                                     ("::1", "loopback"), ("::ffff:10.0.0.1", "reserved"), ("8.8.8.8", "public"),
                                     ("0.0.0.0", "reserved")])
def test_address_classes(ip, kind):
    assert address_class(ip) == kind


def test_hostname_resolving_to_private_is_blocked():
    policy = UrlPolicy()
    with pytest.raises(Refused) as err:
        check_url("http://intranet.example/x.jpg", policy, resolver=lambda h: ["10.0.0.7"])
    assert err.value.reason == "blocked_address"


def test_file_urls_need_a_root_and_stay_inside_it(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    with pytest.raises(Refused, match="file"):
        check_url((tmp_path / "a.jpg").as_uri(), UrlPolicy(allowed_schemes=("http", "https", "file")))
    policy = UrlPolicy(allowed_schemes=("http", "https", "file"), file_root=str(tmp_path))
    assert check_url((tmp_path / "a.jpg").as_uri(), policy).scheme == "file"
    with pytest.raises(Refused) as err:
        check_url("file:///etc/passwd", policy)
    assert err.value.reason == "outside_file_root"
    with pytest.raises(Refused) as err:
        check_url(f"file://{tmp_path}/../../etc/passwd", policy)
    assert err.value.reason == "outside_file_root"


def test_the_look_ahead_is_bounded_by_the_concurrency(server):
    """While the consumer holds result i, at most `concurrency` later URLs have been asked for:
    bodies do not pile up behind a slow decode."""
    import time
    from realsyn.udfs.fetch import fetch_iter
    from tests.http_fixture import Handler
    urls = [f"{server.base}/img/lookahead-{i}.jpg" for i in range(12)]

    def asked() -> int:
        return sum(n for path, n in Handler.hits.items() if path.startswith("/img/lookahead-"))

    seen = []
    for i, got in enumerate(fetch_iter(urls, settings(concurrency_per_task=3))):
        assert got.reason is None
        time.sleep(0.1)                     # a slow consumer: an unbounded pool would fetch all 12 now
        seen.append(asked())
        assert asked() <= i + 1 + 3, seen
    assert asked() == 12 and seen[0] <= 4


def test_a_hard_link_inside_the_root_to_an_outside_file_is_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "secret.jpg"
    root.mkdir()
    outside.write_bytes(b"outside bytes")
    (root / "plain.jpg").write_bytes(b"inside bytes")
    import os
    os.link(outside, root / "linked.jpg")
    s = settings(allowed_schemes=["file"], file_root=str(root))
    assert fetch_one((root / "plain.jpg").as_uri(), s).data == b"inside bytes"
    got = fetch_one((root / "linked.jpg").as_uri(), s)
    assert got.reason == "hard_link" and got.data is None


@pytest.mark.parametrize("path,reason", [
    ("/noai-scoped", "opt_out"), ("/noai-on-redirect", "opt_out"), ("/length-superscript", "malformed_response"),
    ("/not-gzip", "malformed_response"), ("/raw-deflate", None),
])
def test_odd_responses_get_a_reason_and_never_an_exception(server, path, reason):
    from realsyn.udfs.fetch import _never_raise
    got = _never_raise(server.base + path, settings())
    assert got.reason == reason, got.detail
    if reason is None:
        assert got.data[:2] == b"\xff\xd8"          # the JPEG, inflated from raw deflate


def test_name_resolution_runs_inside_the_fetch_deadline():
    import time
    from realsyn.udfs.fetch import fetch_one

    def stuck(host):
        time.sleep(3)
        return ["93.184.216.34"]
    t0 = time.perf_counter()
    got = fetch_one("http://slow-dns.example/x.jpg", settings(deadline_s=0.5), resolver=stuck)
    assert got.reason == "timeout" and "resolving" in got.detail
    assert time.perf_counter() - t0 < 3          # it did not wait for the resolver


@pytest.mark.parametrize("ip,switch", [("169.254.1.2", "allow_link_local_addresses"),
                                       ("169.254.169.254", "allow_metadata_addresses"),
                                       ("fd00:ec2::254", "allow_metadata_addresses"),
                                       ("100.100.100.200", "allow_metadata_addresses")])
def test_link_local_and_metadata_addresses_have_switches_of_their_own(ip, switch):
    from realsyn.udfs.url_policy import check_address
    private_only = settings(allow_private_addresses=True).policy
    with pytest.raises(Refused):
        check_address(ip, private_only)
    check_address(ip, settings(**{switch: True}).policy)
    check_address("10.1.2.3", private_only)


def test_unordered_fetching_keeps_every_url_and_its_bound_and_is_not_held_by_a_slow_one(server):
    from realsyn.udfs.fetch import fetch_unordered
    urls = [server.base + "/slow"] + [f"{server.base}/img/unordered-{i}.jpg" for i in range(8)]
    got = list(fetch_unordered(urls, settings(concurrency_per_task=2, retries=0)))
    assert sorted(i for i, _ in got) == list(range(9))
    assert got[-1][0] == 0 and got[-1][1].reason == "timeout"     # the slow one finished last
    assert all(f.reason is None for i, f in got if i)


def test_a_task_streams_its_batches_through_one_window_and_yields_small_chunks(server):
    import pandas as pd

    from realsyn.udfs.fetch_rows import fetch_fn
    from realsyn.udfs.fetch_rows import fetch_rows
    batches = [pd.DataFrame({"url_id": [f"b{b}-{i}" for i in range(5)],
                             "url": [f"{server.base}/img/stream-{b}-{i}.jpg" for i in range(5)]}) for b in range(3)]
    pulled = []

    def lazily():
        for batch in batches:
            pulled.append(len(pulled))
            yield batch
    pairs = ((u, url) for batch in lazily() for u, url in zip(batch["url_id"], batch["url"]))
    first = next(fetch_rows(pairs, settings(concurrency_per_task=4, retries=0), chunk_rows=1))
    assert len(first) == 1 and pulled == [0]          # a window of 4 is filled from the first batch
    out = pd.concat(list(fetch_fn(settings(concurrency_per_task=4, retries=0))(iter(batches))), ignore_index=True)
    assert sorted(out["url_id"]) == sorted(f"b{b}-{i}" for b in range(3) for i in range(5))
    assert out["fetch_reason"].isna().all() and out["image_id"].str.len().eq(64).all()
    sizes = [len(f) for f in fetch_rows(((f"u{i}", f"{server.base}/img/c-{i}.jpg") for i in range(10)),
                                        settings(concurrency_per_task=4, retries=0), chunk_rows=3)]
    assert sizes == [3, 3, 3, 1]
