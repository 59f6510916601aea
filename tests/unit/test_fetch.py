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
                                     ("172.16.5.4", "private"), ("169.254.169.254", "link_local"),
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
