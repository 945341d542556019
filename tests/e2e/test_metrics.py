"""Prometheus metrics and the admin /stats page: exact counts after known traffic."""

import math

import pytest

import prom
import rawhttp
from conftest import http_client

COUNTERS = [
    "ringside_downstream_rq_total",
    "ringside_downstream_cx_total",
    "ringside_downstream_cx_active",
    "ringside_downstream_rx_bytes_total",
    "ringside_downstream_tx_bytes_total",
    "ringside_upstream_cx_total",
    "ringside_upstream_cx_connect_fail_total",
    "ringside_upstream_rq_timeout_total",
]
HISTOGRAMS = ["ringside_downstream_rq_duration_microseconds", "ringside_proxy_added_microseconds"]


def rq(m, cls):
    return m.sum("ringside_downstream_rq_total", response_code_class=cls)


def send_known_traffic(proxy):
    """7 requests answered 200 and 2 answered 404, each on its own connection.
    Returns (bytes sent, bytes received) on the outbound port."""
    sent = received = 0
    for i in range(9):
        host = "origin.test" if i % 4 != 1 else "unknown.example"  # i = 1, 5 -> 404
        with rawhttp.Conn(proxy.outbound) as c:
            c.send(rawhttp.build_request("GET", "/echo?i=%d" % i, host=host))
            r = c.read_response()
            assert r.status == (404 if host == "unknown.example" else 200), r
            sent += c.sent
            received += c.received
    return sent, received


def settled(proxy, pred):
    return proxy.wait_metric(pred, timeout=5.0)


def test_prometheus_format_and_names(proxy):
    get = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo"))
    assert get.status == 200
    r = proxy.scrape_text()
    assert r.headers.get("content-type", "").startswith("text/plain"), r.headers
    m = prom.Metrics(r.text)
    for name in COUNTERS:
        assert m.has(name), "metric %s missing" % name
    for name in HISTOGRAMS:
        assert m.types.get(name) == "histogram", "# TYPE %s is %r" % (name, m.types.get(name))
        for suffix in ("_bucket", "_sum", "_count"):
            assert m.has(name + suffix), "%s%s missing" % (name, suffix)
    for name in COUNTERS:
        if name != "ringside_downstream_cx_active":
            assert m.types.get(name) == "counter", "# TYPE %s is %r" % (name, m.types.get(name))
    assert m.types.get("ringside_downstream_cx_active") == "gauge"


@pytest.mark.parametrize("concurrency", [1, 2])
def test_request_counters_exact(make_proxy, origin, concurrency):
    proxy = make_proxy(concurrency=concurrency)
    send_known_traffic(proxy)
    m = settled(proxy, lambda m: rq(m, "2xx") >= 7 and rq(m, "4xx") >= 2)
    assert rq(m, "2xx") == 7, m.find("ringside_downstream_rq_total")
    assert rq(m, "4xx") == 2, m.find("ringside_downstream_rq_total")
    assert rq(m, "5xx") == 0, m.find("ringside_downstream_rq_total")
    assert m.value("ringside_downstream_cx_total") == 9
    # upstream connections: exactly what the origin accepted
    assert m.value("ringside_upstream_cx_total") == origin.accepted()
    assert 1 <= origin.accepted() <= concurrency
    assert m.value("ringside_upstream_cx_connect_fail_total") == 0
    assert m.value("ringside_upstream_rq_timeout_total") == 0
    # a second scrape does not change anything
    m2 = proxy.metrics()
    assert rq(m2, "2xx") == 7 and rq(m2, "4xx") == 2


@pytest.mark.parametrize("concurrency", [1, 2])
def test_histogram_counts_exact(make_proxy, concurrency):
    proxy = make_proxy(concurrency=concurrency)
    send_known_traffic(proxy)
    m = settled(proxy, lambda m: (m.histogram(HISTOGRAMS[0])[2] or 0) >= 9 and (m.histogram(HISTOGRAMS[1])[2] or 0) >= 9)
    for name in HISTOGRAMS:
        buckets, total, count = m.histogram(name)
        assert count == 9, "%s_count = %r" % (name, count)
        assert buckets, "%s has no buckets" % name
        les = [le for le, _ in buckets]
        assert les[-1] == math.inf, "%s has no le=\"+Inf\" bucket" % name
        counts = [c for _, c in buckets]
        assert counts == sorted(counts), "%s buckets are not cumulative: %r" % (name, buckets)
        assert counts[-1] == 9
        assert total is not None and total > 0, "%s_sum = %r" % (name, total)
    # durations are in microseconds: 9 loopback requests take more than 9 us and less than 9 * 10 s
    _, total, _ = m.histogram("ringside_downstream_rq_duration_microseconds")
    assert 9 <= total < 9 * 10_000_000


@pytest.mark.parametrize("concurrency", [1, 2])
def test_byte_counters_exact(make_proxy, concurrency):
    proxy = make_proxy(concurrency=concurrency)
    sent, received = send_known_traffic(proxy)
    m = settled(
        proxy,
        lambda m: m.sum("ringside_downstream_rx_bytes_total") >= sent and m.sum("ringside_downstream_tx_bytes_total") >= received,
    )
    assert m.sum("ringside_downstream_rx_bytes_total") == sent
    assert m.sum("ringside_downstream_tx_bytes_total") == received


def test_cx_active_gauge(make_proxy):
    proxy = make_proxy(concurrency=2)
    conns = [rawhttp.Conn(proxy.outbound) for _ in range(3)]
    try:
        for c in conns:
            c.send(rawhttp.build_request("GET", "/echo"))
            assert c.read_response().status == 200
        m = settled(proxy, lambda m: m.value("ringside_downstream_cx_active") == 3)
        assert m.value("ringside_downstream_cx_active") == 3
    finally:
        for c in conns:
            c.close()
    m = settled(proxy, lambda m: m.value("ringside_downstream_cx_active") == 0)
    assert m.value("ringside_downstream_cx_active") == 0, "connections closed by the client still counted active"


def test_5xx_and_connect_fail_counters(proxy):
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/echo", host="refused.test"))
    assert resp.status == 503
    m = settled(proxy, lambda m: rq(m, "5xx") >= 1)
    assert rq(m, "5xx") == 1
    assert rq(m, "2xx") == 0
    assert m.value("ringside_upstream_cx_connect_fail_total") >= 1


def test_rq_timeout_counter(make_proxy):
    proxy = make_proxy(extra_args=["--route-timeout", "300ms"])
    resp = rawhttp.request(proxy.outbound, rawhttp.build_request("GET", "/slow?ms=3000"))
    assert resp.status == 504
    m = settled(proxy, lambda m: (m.value("ringside_upstream_rq_timeout_total") or 0) >= 1)
    assert m.value("ringside_upstream_rq_timeout_total") == 1
    assert rq(m, "5xx") == 1


def _admin_stats(text):
    """Parses "name: value" lines (an optional ringside_ prefix is dropped)."""
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            try:
                out[name.strip().removeprefix("ringside_")] = float(value.strip())
            except ValueError:
                pass
    return out


def test_admin_stats_text(proxy):
    send_known_traffic(proxy)
    settled(proxy, lambda m: rq(m, "2xx") >= 7 and rq(m, "4xx") >= 2)
    with http_client() as c:
        r = c.get("http://127.0.0.1:%d/stats" % proxy.admin)
    assert r.status_code == 200, r.text
    st = _admin_stats(r.text)
    for name in COUNTERS:
        short = name[len("ringside_"):]
        if short == "downstream_rq_total":
            continue
        assert short in st, "admin /stats lacks %s:\n%s" % (short, r.text[:3000])
    # requests by class, either Envoy style (downstream_rq_2xx) or as in Prometheus
    if "downstream_rq_2xx" in st:
        assert st["downstream_rq_2xx"] == 7 and st["downstream_rq_4xx"] == 2, r.text
    else:
        assert 'downstream_rq_total{response_code_class="2xx"}' in r.text, r.text
    assert st["downstream_cx_total"] == 9, r.text
