"""DestinationRule loadBalancer: every algorithm, its spread and (for
consistent hashing) its stickiness, checked statistically against three
real origins."""

import threading
import time

import httpx
import pytest

from conftest import http_client
from test_routing import origins, proxy_with, service  # noqa: F401 (origins is a fixture)


def rule(lb):
    return (
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: lb}\n"
        "spec:\n  host: lb\n  trafficPolicy:\n    loadBalancer:\n%s" % "".join("      %s\n" % l for l in lb.splitlines())
    )


def lb_proxy(make_proxy, tmp_path, origins, lb):
    eps = [(o, {"version": "v1"}) for o in origins]
    return proxy_with(make_proxy, tmp_path, service("lb", "lb.default.svc.cluster.local", eps), rule(lb))


def counts(origins, tag):
    return [sum(1 for r in o.requests if r.header("x-tag") == tag) for o in origins]


def send(p, n, tag, headers=None, path="/echo", fresh=False):
    h = {"Host": "lb", "x-tag": tag}
    h.update(headers or {})
    with httpx.Client(timeout=10.0) as c:
        for _ in range(n):
            if fresh:
                with http_client() as c1:
                    assert c1.get(p.url(path), headers=h).status_code == 200
            else:
                assert c.get(p.url(path), headers=h).status_code == 200


def test_round_robin_is_even(make_proxy, tmp_path, origins):
    p = lb_proxy(make_proxy, tmp_path, origins, "simple: ROUND_ROBIN")
    send(p, 300, "rr")
    # One keep-alive connection: one shard, whose turn goes round exactly.
    assert counts(origins, "rr") == [100, 100, 100]


def test_random_spreads(make_proxy, tmp_path, origins):
    p = lb_proxy(make_proxy, tmp_path, origins, "simple: RANDOM")
    send(p, 1500, "random")
    c = counts(origins, "random")
    # Binomial(1500, 1/3): sd 18; 6 sd either way.
    assert all(390 <= x <= 610 for x in c), c


def drive(p, tag, seconds, nclients=6):
    """nclients keep-alive clients send requests for seconds."""
    stop = time.monotonic() + seconds

    def client():
        with httpx.Client(timeout=10.0) as c:
            while time.monotonic() < stop:
                assert c.get(p.url("/echo"), headers={"Host": "lb", "x-tag": tag}).status_code == 200

    threads = [threading.Thread(target=client) for _ in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)


def test_least_request_avoids_a_slow_endpoint(make_proxy, tmp_path, origins):
    origins[0].force_delay = 0.2
    p = lb_proxy(make_proxy, tmp_path, origins, "simple: LEAST_REQUEST")
    drive(p, "lr", 3.0)
    c = counts(origins, "lr")
    # Round robin would give the slow one a third; two choices by requests
    # in flight send it far less.
    assert c[0] / sum(c) < 0.15, c


def test_default_is_least_request(make_proxy, tmp_path, origins):
    origins[0].force_delay = 0.2
    eps = [(o, {"version": "v1"}) for o in origins]
    p = proxy_with(make_proxy, tmp_path, service("lb", "lb.default.svc.cluster.local", eps))
    drive(p, "default", 2.0)
    c = counts(origins, "default")
    assert c[0] / sum(c) < 0.15, c


@pytest.mark.parametrize(
    "lb,key",
    [
        ("consistentHash: {httpHeaderName: x-user}", "header"),
        ("consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 65537}}", "header"),
        ("consistentHash: {httpQueryParameterName: user, ringHash: {minimumRingSize: 2048}}", "query"),
        ("consistentHash: {httpCookie: {name: session, ttl: 0s}}", "cookie"),
    ],
)
def test_consistent_hash_is_sticky_and_spreads(make_proxy, tmp_path, origins, lb, key):
    p = lb_proxy(make_proxy, tmp_path, origins, lb)
    owner = {}
    for u in range(45):
        user = "user-%d" % u
        h, path = {}, "/echo"
        if key == "header":
            h["x-user"] = user
        elif key == "query":
            path = "/echo?user=%s&x=1" % user
        else:
            h["cookie"] = "a=b; session=%s; c=d" % user
        # Fresh connections: whichever shard takes it, the same endpoint.
        send(p, 2, "ch-%s" % user, headers=h, path=path, fresh=True)
        c = counts(origins, "ch-%s" % user)
        assert sorted(c) == [0, 0, 2], (user, c)
        owner[user] = c.index(2)
    spread = [list(owner.values()).count(i) for i in range(3)]
    # 45 keys on 3 endpoints: each gets several (P(one gets under 4) ~ 1e-4).
    assert all(s >= 4 for s in spread), spread


def test_consistent_hash_on_source_ip(make_proxy, tmp_path, origins):
    p = lb_proxy(make_proxy, tmp_path, origins, "consistentHash: {useSourceIp: true}")
    send(p, 30, "ip", fresh=True)
    assert sorted(counts(origins, "ip")) == [0, 0, 30]
