"""VirtualService routing in the data path: matches, weighted subsets, direct
responses, redirects, rewrites, header rules, faults and route timeouts,
with the mission's examples used unchanged where they apply."""

import os
import pathlib
import threading

import httpx
import pytest

import origin as origin_mod
from conftest import http_client

MISSION = pathlib.Path(os.environ.get("RINGSIDE_MISSION_CONFIG", pathlib.Path(__file__).resolve().parents[3] / "shared" / "mission-config"))



def mission(name):
    p = MISSION / name
    if not p.exists():
        pytest.skip("the mission's examples are not beside the repository (%s)" % p)
    return p


@pytest.fixture
def origins():
    os_ = [origin_mod.Origin().start() for _ in range(3)]
    yield os_
    for o in os_:
        o.stop()


def service(name, host, endpoints, port=80, ns="default"):
    """A ServiceEntry for host whose endpoints are (origin, labels) pairs."""
    eps = "".join(
        "  - address: 127.0.0.1\n    ports: {http: %d}\n    labels: {%s}\n"
        % (o.port, ", ".join("%s: %s" % kv for kv in labels.items()))
        for o, labels in endpoints
    )
    return (
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
        "metadata: {name: %s, namespace: %s}\n"
        "spec:\n  hosts: [%s]\n  location: MESH_INTERNAL\n  resolution: STATIC\n"
        "  ports: [{number: %d, name: http, protocol: HTTP}]\n  endpoints:\n%s" % (name, ns, host, port, eps)
    )


def subsets_rule(name, host, versions):
    subs = "".join("  - {name: %s, labels: {version: %s}}\n" % (v, v) for v in versions)
    return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: %s}\nspec:\n  host: %s\n  subsets:\n%s" % (name, host, subs)


def proxy_with(make_proxy, tmp_path, *docs, files=()):
    cfg = tmp_path / "routing.yaml"
    cfg.write_text("---\n".join(docs))
    args = ["--config", str(cfg)]
    for f in files:
        args += ["--config", str(f)]
    return make_proxy(extra_args=args)


def served(o, tag):
    return sum(1 for r in o.requests if r.header("x-tag") == tag)


def get(p, host, path="/echo", headers=None, **kw):
    h = {"Host": host}
    h.update(headers or {})
    with http_client() as c:
        return c.get(p.url(path), headers=h, **kw)


def test_mission_01_header_routing(make_proxy, tmp_path, origins):
    v1, v2, _ = origins
    p = proxy_with(
        make_proxy,
        tmp_path,
        service("reviews", "reviews.default.svc.cluster.local", [(v1, {"version": "v1"}), (v2, {"version": "v2"})]),
        files=[mission("01-reviews-header-routing.yaml")],
    )
    for i in range(20):
        assert get(p, "reviews", headers={"x-user-type": "beta", "x-tag": "beta"}).status_code == 200
        assert get(p, "reviews", headers={"x-user-type": "alpha", "x-tag": "other"}).status_code == 200
        assert get(p, "reviews:80", headers={"x-tag": "none"}).status_code == 200
    assert served(v2, "beta") == 20 and served(v1, "beta") == 0
    assert served(v1, "other") == 20 and served(v2, "other") == 0
    assert served(v1, "none") == 20 and served(v2, "none") == 0


def test_mission_02_canary_split(make_proxy, tmp_path, origins):
    v1, v2, _ = origins
    p = proxy_with(
        make_proxy,
        tmp_path,
        service("api", "api.default.svc.cluster.local", [(v1, {"version": "v1"}), (v2, {"version": "v2"})]),
        # The mission's 02 routes to subsets of api and defines none.
        subsets_rule("api", "api", ["v1", "v2"]),
        files=[mission("02-api-canary-split.yaml")],
    )
    total, nthreads = 10000, 4
    errors = []

    def client(n):
        with httpx.Client(timeout=10.0) as c:
            for _ in range(n):
                r = c.get(p.url("/echo"), headers={"Host": "api", "x-tag": "split"})
                if r.status_code != 200:
                    errors.append(r.status_code)

    threads = [threading.Thread(target=client, args=(total // nthreads,)) for _ in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    a, b = served(v1, "split"), served(v2, "split")
    assert a + b == total
    # 90/10 within ±2 percentage points (the binomial sd here is 0.3 points).
    assert abs(b / total - 0.10) <= 0.02, "v2 got %.2f%%" % (100 * b / total)


MATCHES = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop}
spec:
  hosts: [shop]
  http:
  - name: exact
    match: [{uri: {exact: /exact}}]
    route: [{destination: {host: shop, subset: a}}]
  - name: regex-header
    match: [{headers: {x-env: {regex: "stag(e|ing)"}}}]
    route: [{destination: {host: shop, subset: b}}]
  - name: case-insensitive-prefix
    match: [{uri: {prefix: /API/}, ignoreUriCase: true, method: {exact: POST}}]
    route: [{destination: {host: shop, subset: b}}]
  - name: query-and-present
    match: [{queryParams: {debug: {exact: "1"}}, headers: {x-present: {}}}]
    route: [{destination: {host: shop, subset: c}}]
  - name: without
    match: [{uri: {prefix: /w}, withoutHeaders: {x-skip: {}}}]
    route: [{destination: {host: shop, subset: c}}]
  - name: only-w
    match: [{uri: {prefix: /w}}]
    route: [{destination: {host: shop, subset: a}}]
  - name: not-for-me
    match: [{sourceLabels: {app: someone-else}}]
    route: [{destination: {host: shop, subset: c}}]
  - name: nowhere
    match: [{uri: {prefix: /nowhere}}]
    route: [{destination: {host: nothing.example.com}}]
"""


@pytest.fixture
def shop(make_proxy, tmp_path, origins):
    a, b, c = origins
    p = proxy_with(
        make_proxy,
        tmp_path,
        service("shop", "shop.default.svc.cluster.local", [(a, {"version": "a"}), (b, {"version": "b"}), (c, {"version": "c"})]),
        subsets_rule("shop", "shop", ["a", "b", "c"]),
        MATCHES,
    )
    return p, origins


@pytest.mark.parametrize(
    "path,method,headers,want",
    [
        ("/exact", "GET", {}, 0),
        ("/exact?x=1", "GET", {}, 0),  # exact sees the path without its query
        ("/exact/more", "GET", {"x-env": "staging"}, 1),
        ("/any", "GET", {"x-env": "stage"}, 1),
        ("/api/v1", "POST", {}, 1),  # prefix /API/ with ignoreUriCase
        ("/api/v1", "GET", {"x-present": ""}, None),  # method does not match; no query
        ("/q?debug=1&a=b", "GET", {"x-present": "yes"}, 2),
        ("/q?debug=2", "GET", {"x-present": "yes"}, None),
        ("/w/1", "GET", {}, 2),
        ("/w/1", "GET", {"x-skip": "1"}, 0),
    ],
)
def test_matches_pick_the_first_route(shop, path, method, headers, want):
    p, origins = shop
    tag = "%s-%s-%s" % (method, path, sorted(headers.items()))
    h = {"Host": "shop", "x-tag": tag}
    h.update(headers)
    with http_client() as c:
        r = c.request(method, p.url(path), headers=h)
    if want is None:
        # No route matches: Envoy's 404 NR, from the proxy; no origin sees it.
        assert r.status_code == 404 and r.headers.get("server") == "ringside"
        assert all(served(o, tag) == 0 for o in origins)
    else:
        # The origin answers what it does with the path (often its own 404).
        assert r.headers.get("server") != "ringside", r.text
        assert [served(o, tag) for o in origins] == [1 if i == want else 0 for i in range(3)]


def test_destination_without_cluster_is_503_nc(shop):
    p, _ = shop
    r = get(p, "shop", "/nowhere")
    assert r.status_code == 503
    assert r.text.strip() == "no healthy upstream"


ACTIONS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: actions}
spec:
  hosts: [actions]
  http:
  - match: [{uri: {exact: /direct}}]
    directResponse: {status: 418, body: {string: "short and stout"}}
    headers: {response: {set: {x-teapot: "yes"}}}
  - match: [{uri: {prefix: /old}}]
    redirect: {uri: /new, authority: example.com, redirectCode: 308}
  - match: [{uri: {prefix: /legacy/}}]
    rewrite: {uri: /v2/, authority: rewritten.example}
    route: [{destination: {host: actions}}]
  - match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 429, percentage: {value: 100}}}
    route: [{destination: {host: actions}}]
  - match: [{uri: {prefix: /slow}}]
    timeout: 300ms
    route: [{destination: {host: actions}}]
  - match: [{uri: {prefix: /mirrored}}]
    route: [{destination: {host: actions}}]
    mirror: {host: shadow}
  - match: [{uri: {prefix: /half-mirrored}}]
    route: [{destination: {host: actions}}]
    mirror: {host: shadow}
    mirrorPercentage: {value: 50}
  - match: [{uri: {prefix: /delayed}}]
    fault: {delay: {fixedDelay: 400ms, percentage: {value: 100}}}
    route: [{destination: {host: actions}}]
  - match: [{uri: {prefix: /late-abort}}]
    fault:
      delay: {fixedDelay: 300ms, percentage: {value: 100}}
      abort: {httpStatus: 418, percentage: {value: 100}}
    route: [{destination: {host: actions}}]
  - match: [{uri: {prefix: /sometimes}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 30}}}
    route: [{destination: {host: actions}}]
  - headers:
      request:
        set: {x-set: route}
        add: {x-added: one}
        remove: [x-secret]
      response:
        set: {x-resp: route}
        remove: [x-origin-private]
    route:
    - destination: {host: actions}
      headers: {request: {set: {x-dest: d1}}}
"""


@pytest.fixture
def actions(make_proxy, tmp_path, origins):
    a, shadow = origins[0], origins[1]
    p = proxy_with(
        make_proxy,
        tmp_path,
        service("actions", "actions.default.svc.cluster.local", [(a, {"version": "v1"})]),
        service("shadow", "shadow.default.svc.cluster.local", [(shadow, {"version": "v1"})]),
        ACTIONS,
    )
    return p, a


def test_direct_response(actions):
    p, a = actions
    mark = a.mark()
    r = get(p, "actions", "/direct")
    assert r.status_code == 418
    assert r.text == "short and stout"
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["x-teapot"] == "yes"
    assert a.requests_since(mark) == []


def test_redirect(actions):
    p, a = actions
    r = get(p, "actions", "/old/page?x=1")
    assert r.status_code == 308
    assert r.headers["location"] == "http://example.com/new?x=1"
    assert r.headers["content-length"] == "0"


def test_rewrite_uri_prefix_and_authority(actions):
    p, a = actions
    mark = a.mark()
    get(p, "actions", "/legacy/items?id=7")
    (seen,) = a.requests_since(mark)
    assert seen.target == "/v2/items?id=7"
    assert seen.header("host") == "rewritten.example"


def test_fault_abort(actions):
    p, a = actions
    mark = a.mark()
    r = get(p, "actions", "/abort")
    assert r.status_code == 429
    assert a.requests_since(mark) == []


def test_route_timeout(actions):
    p, a = actions
    r = get(p, "actions", "/slow?ms=2000")
    assert r.status_code == 504
    assert r.text.strip() == "upstream request timeout"


def test_header_rules(actions):
    p, a = actions
    r = get(p, "actions", "/echo", headers={"x-secret": "s", "x-added": "zero"})
    assert r.status_code == 200
    hs = [(k.lower(), v) for k, v in r.json()["headers"]]
    assert ("x-set", "route") in hs and ("x-dest", "d1") in hs
    assert [v for k, v in hs if k == "x-added"] == ["zero", "one"]
    assert not any(k == "x-secret" for k, _ in hs)
    assert r.headers["x-resp"] == "route"


def mission_03_copy(tmp_path, timeout, per_try, retry_on=None):
    """The mission's 03 with its durations (and, if given, retryOn) replaced."""
    text = mission("03-ratings-retries-timeouts.yaml").read_text()
    assert "timeout: 10s" in text and "perTryTimeout: 3s" in text
    text = text.replace("timeout: 10s", "timeout: %s" % timeout).replace("perTryTimeout: 3s", "perTryTimeout: %s" % per_try)
    if retry_on:
        text = text.replace("retryOn: connect-failure,refused-stream,503", "retryOn: %s" % retry_on)
    p = tmp_path / "03-copy.yaml"
    p.write_text(text)
    return p


@pytest.fixture
def ratings(make_proxy, tmp_path, origins, refused):
    a, b, _ = origins

    def make(endpoints=None, **kw):
        eps = endpoints or [(a, {"version": "v1"})]
        return proxy_with(make_proxy, tmp_path, service("ratings", "ratings.default.svc.cluster.local", eps), files=[mission_03_copy(tmp_path, **kw)])

    return make


def test_mission_03_parsed_as_written(make_proxy, tmp_path):
    p = make_proxy(extra_args=["--config", str(mission("03-ratings-retries-timeouts.yaml"))])
    with http_client() as c:
        d = c.get("http://127.0.0.1:%d/config_dump" % p.admin).json()
    (vs,) = [r for r in d["config"]["resources"] if r["kind"] == "VirtualService"]
    route = vs["object"]["spec"]["http"][0]
    assert route["timeout"] == "10s"
    assert route["retries"] == {"attempts": 3, "perTryTimeout": "3s", "retryOn": "connect-failure,refused-stream,503"}


def test_mission_03_a_503_is_retried(ratings, origins):
    p = ratings(timeout="5s", per_try="2s")
    r = get(p, "ratings", "/flaky?key=once&fail=1&code=503")
    assert r.status_code == 200 and r.text == "try 2\n"
    assert origins[0].flaky["once"] == 2
    assert p.metrics().value("ringside_upstream_rq_retry_total") == 1


def test_mission_03_retries_stop_after_three(ratings, origins):
    p = ratings(timeout="5s", per_try="2s")
    r = get(p, "ratings", "/flaky?key=always&fail=100&code=503")
    # attempts: 3 is Envoy's num_retries: the first try and three more.
    assert r.status_code == 503 and r.text == "try 4\n"
    assert origins[0].flaky["always"] == 4
    # A status not in retryOn is not retried.
    r = get(p, "ratings", "/flaky?key=500&fail=100&code=500")
    assert r.status_code == 500 and origins[0].flaky["500"] == 1


def test_mission_03_connect_failures_are_retried_on_another_endpoint(ratings, origins, refused):
    class Refused:
        port = refused.port

    p = ratings([(Refused, {"version": "v1"}), (origins[0], {"version": "v1"})], timeout="5s", per_try="2s")
    for i in range(30):
        r = get(p, "ratings", "/echo")
        assert r.status_code == 200, r.text
    m = p.metrics()
    # Every connect failure was retried, and the retry went elsewhere; with
    # 30 picks between two endpoints some first tries met the refused one.
    assert m.value("ringside_upstream_rq_retry_total") == m.value("ringside_upstream_cx_connect_fail_total") >= 1


def test_mission_03_each_try_is_cut_at_its_timeout(ratings, origins):
    import time

    # retryOn of 03 does not retry timeouts: one try, cut at perTryTimeout.
    p = ratings(timeout="5s", per_try="300ms")
    t0 = time.monotonic()
    r = get(p, "ratings", "/slow?ms=3000")
    took = time.monotonic() - t0
    assert r.status_code == 504 and r.text.strip() == "upstream request timeout"
    assert 0.25 < took < 2.0
    assert sum(1 for q in origins[0].requests if q.path == "/slow") == 1


def test_mission_03_the_whole_request_is_cut_at_the_route_timeout(ratings, origins):
    import time

    # With timeouts retried, tries of 300 ms go on until the route's 800 ms.
    p = ratings(timeout="800ms", per_try="300ms", retry_on="5xx")
    t0 = time.monotonic()
    r = get(p, "ratings", "/slow?ms=3000")
    took = time.monotonic() - t0
    assert r.status_code == 504
    assert 0.7 < took < 2.5
    assert sum(1 for q in origins[0].requests if q.path == "/slow") >= 2


def test_istio_default_retries_without_a_policy(make_proxy, tmp_path, origins):
    """No retries written: Istio's default, 2 retries on connect failures
    and 503 (not on 500)."""
    o = origins[0]
    p = proxy_with(make_proxy, tmp_path, service("plain", "plain.default.svc.cluster.local", [(o, {"v": "1"})]))
    r = get(p, "plain", "/flaky?key=d503&fail=2&code=503")
    assert r.status_code == 200 and o.flaky["d503"] == 3
    r = get(p, "plain", "/flaky?key=d503b&fail=5&code=503")
    assert r.status_code == 503 and o.flaky["d503b"] == 3
    r = get(p, "plain", "/flaky?key=d500&fail=1&code=500")
    assert r.status_code == 500 and o.flaky["d500"] == 1


def test_retry_goes_to_another_endpoint(ratings, origins):
    a, b, _ = origins
    a.force_status = 503
    p = ratings([(a, {"version": "v1"}), (b, {"version": "v1"})], timeout="5s", per_try="2s")
    for i in range(10):
        assert get(p, "ratings", "/echo").status_code == 200


def mission_04_copy(tmp_path, base="1s", max_pct=None, interval=None):
    text = mission("04-reviews-circuit-breaking.yaml").read_text()
    assert "baseEjectionTime: 30s" in text and "maxEjectionPercent: 100" in text
    text = text.replace("baseEjectionTime: 30s", "baseEjectionTime: %s" % base)
    if interval:
        assert "interval: 30s" in text
        text = text.replace("interval: 30s", "interval: %s" % interval)
    if max_pct is not None:
        text = text.replace("maxEjectionPercent: 100", "maxEjectionPercent: %d" % max_pct)
    p = tmp_path / "04-copy.yaml"
    p.write_text(text)
    return p


def reviews_04(make_proxy, tmp_path, origins, **kw):
    cfg = tmp_path / "svc.yaml"
    cfg.write_text(service("reviews", "reviews.default.svc.cluster.local", [(o, {"version": "v1"}) for o in origins]))
    # One shard: consecutive errors are counted per shard (see the README).
    return make_proxy(extra_args=["--config", str(cfg), "--config", str(mission_04_copy(tmp_path, **kw))], concurrency=1)


def reached(o, tag):
    return sum(1 for r in o.requests if r.header("x-tag") == tag)


def test_mission_04_five_5xx_eject_until_base_ejection_time(make_proxy, tmp_path, origins):
    import time

    bad, good1, good2 = origins
    bad.force_status = 503
    p = reviews_04(make_proxy, tmp_path, origins)
    with httpx.Client(timeout=10.0) as c:
        def send(n, tag):
            for _ in range(n):
                c.get(p.url("/echo"), headers={"Host": "reviews", "x-tag": tag})

        for _ in range(200):
            send(1, "warm")
            if reached(bad, "warm") == 5:
                break
        assert reached(bad, "warm") == 5
        t_eject = time.monotonic()
        send(60, "ejected")
        assert reached(bad, "ejected") == 0 and reached(good1, "ejected") + reached(good2, "ejected") == 60
        time.sleep(max(0, 1.2 - (time.monotonic() - t_eject)))
        send(60, "back")
        # Back after baseEjectionTime, then ejected again after 5 more.
        assert reached(bad, "back") == 5
    assert "ejected for 1000 ms (ejection 1)" in p.stderr_text()
    assert "ejected for 2000 ms (ejection 2)" in p.stderr_text()


def test_mission_04_max_ejection_percent(make_proxy, tmp_path, origins):
    a, b, good = origins
    a.force_status = b.force_status = 503
    p = reviews_04(make_proxy, tmp_path, origins, base="30s", max_pct=34)
    with httpx.Client(timeout=10.0) as c:
        for _ in range(120):
            c.get(p.url("/echo"), headers={"Host": "reviews", "x-tag": "fill"})
        for _ in range(90):
            c.get(p.url("/echo"), headers={"Host": "reviews", "x-tag": "after"})
    # 34% of 3 endpoints: one may be ejected, not two.
    after = sorted([reached(a, "after"), reached(b, "after")])
    assert after[0] == 0 and after[1] > 0, after
    assert p.stderr_text().count("ejected for") == 1


def test_mission_04_connection_pool_limits(make_proxy, tmp_path, origins):
    """maxConnections bounds the connections opened, http1MaxPendingRequests
    the requests waiting for one, across both shards; the rest get 503 UO."""
    slow = origins[0]
    slow.force_delay = 1.5
    text = mission("04-reviews-circuit-breaking.yaml").read_text()
    assert "maxConnections: 100" in text and "http1MaxPendingRequests: 100" in text
    copy = tmp_path / "04-pool.yaml"
    copy.write_text(text.replace("maxConnections: 100", "maxConnections: 2").replace("http1MaxPendingRequests: 100", "http1MaxPendingRequests: 2"))
    cfg = tmp_path / "svc.yaml"
    cfg.write_text(service("reviews", "reviews.default.svc.cluster.local", [(slow, {"version": "v1"})]))
    p = make_proxy(extra_args=["--config", str(cfg), "--config", str(copy)])
    results = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def one():
        with http_client() as c:
            start.wait()
            r = c.get(p.url("/echo"), headers={"Host": "reviews"})
        with lock:
            results.append((r.status_code, r.text))

    import time

    peak = [0]
    done = threading.Event()

    def sample():
        # The proxy's own count of upstream connections open, sampled.
        while not done.is_set():
            peak[0] = max(peak[0], p.metrics().value("ringside_upstream_cx_active"))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    done.set()
    sampler.join(5)
    codes = sorted(c for c, _ in results)
    assert codes == [200] * 4 + [503] * 4, results
    assert all("reset reason: overflow" in t for c, t in results if c == 503)
    assert 1 <= peak[0] <= 2, "maxConnections: %d connections open at once" % peak[0]


def pool_rule(pool):
    return (
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: pool}\n"
        "spec:\n  host: pool\n  trafficPolicy:\n    connectionPool:\n%s" % "".join("      %s\n" % l for l in pool.splitlines())
    )


def test_http2_max_requests_bounds_requests_in_flight(make_proxy, tmp_path, origins):
    slow = origins[0]
    slow.force_delay = 0.5
    p = proxy_with(make_proxy, tmp_path, service("pool", "pool.default.svc.cluster.local", [(slow, {"v": "1"})]), pool_rule("http: {http2MaxRequests: 2}"))
    results = []

    def one():
        with http_client() as c:
            results.append(c.get(p.url("/echo"), headers={"Host": "pool"}).status_code)

    threads = [threading.Thread(target=one) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results) == [200, 200, 503, 503, 503]


def test_max_requests_per_connection(make_proxy, tmp_path, origins):
    o = origins[0]
    p = proxy_with(make_proxy, tmp_path, service("pool", "pool.default.svc.cluster.local", [(o, {"v": "1"})]), pool_rule("http: {maxRequestsPerConnection: 2}"))
    with httpx.Client(timeout=10.0) as c:
        for _ in range(6):
            assert c.get(p.url("/echo"), headers={"Host": "pool"}).status_code == 200
    # Two requests a connection: three connections (one client connection,
    # so one shard and its pool).
    assert len(o.conns) == 3


def test_fault_delay(actions):
    import time

    p, a = actions
    mark = a.mark()
    t0 = time.monotonic()
    r = get(p, "actions", "/delayed")
    took = time.monotonic() - t0
    assert r.headers.get("server") != "ringside"  # the origin answered, late
    assert 0.38 < took < 2.0
    assert len(a.requests_since(mark)) == 1


def test_fault_abort_percentage(actions):
    p, a = actions
    codes = []
    with httpx.Client(timeout=10.0) as c:
        for _ in range(600):
            codes.append(c.get(p.url("/sometimes"), headers={"Host": "actions"}).status_code)
    aborted = codes.count(503)
    # Binomial(600, 0.3): sd 11; 5 sd either way.
    assert 125 <= aborted <= 235, aborted


def test_mirror(actions, origins):
    p, a = actions
    shadow = origins[1]
    shadow.force_status = 500  # what the mirror answers never reaches the client
    for i in range(20):
        r = get(p, "actions", "/mirrored", headers={"x-tag": "m%d" % i})
        assert r.headers.get("server") != "ringside"
    shadow.wait_for(lambda: sum(1 for q in shadow.requests if (q.header("x-tag") or "").startswith("m")) == 20)
    seen = [q for q in shadow.requests if (q.header("x-tag") or "").startswith("m")]
    assert {q.header("host") for q in seen} == {"actions-shadow"}
    assert all(q.target == "/mirrored" for q in seen)
    assert sum(1 for q in a.requests if (q.header("x-tag") or "").startswith("m")) == 20


def test_mirror_percentage(actions, origins):
    p, a = actions
    shadow = origins[1]
    with httpx.Client(timeout=10.0) as c:
        for i in range(400):
            c.get(p.url("/half-mirrored"), headers={"Host": "actions:80", "x-tag": "h"})
    import time

    time.sleep(0.5)
    n = sum(1 for q in shadow.requests if q.header("x-tag") == "h")
    # Binomial(400, 0.5): sd 10; 5 sd either way.
    assert 150 <= n <= 250, n
    assert {q.header("host") for q in shadow.requests if q.header("x-tag") == "h"} == {"actions-shadow:80"}


def test_max_connections_one_over_two_shards_does_not_stall(make_proxy, tmp_path, origins):
    """A connection idle on one shard must not keep a request on the other
    waiting: the waiting shard wakes the other, which closes it."""
    import time

    o = origins[0]
    p = proxy_with(make_proxy, tmp_path, service("pool", "pool.default.svc.cluster.local", [(o, {"v": "1"})]), pool_rule("tcp: {maxConnections: 1}"))
    t0 = time.monotonic()
    for _ in range(12):
        with http_client(timeout=3.0) as c:
            assert c.get(p.url("/echo"), headers={"Host": "pool"}).status_code == 200
    assert time.monotonic() - t0 < 5.0


def test_fault_delay_then_abort(actions):
    import time

    p, a = actions
    mark = a.mark()
    t0 = time.monotonic()
    r = get(p, "actions", "/late-abort")
    assert r.status_code == 418 and time.monotonic() - t0 > 0.28
    assert a.requests_since(mark) == []


def test_idle_timeout_closes_pooled_connections(make_proxy, tmp_path, origins):
    o = origins[0]
    p = proxy_with(make_proxy, tmp_path, service("pool", "pool.default.svc.cluster.local", [(o, {"v": "1"})]), pool_rule("http: {idleTimeout: 1s}"))
    assert get(p, "pool", "/echo").status_code == 200
    (conn,) = o.conns
    # Swept once a second: closed within two.
    assert conn.closed.wait(3.5)


def test_tcp_keepalive_on_upstream_connections(make_proxy, tmp_path, origins):
    import shutil
    import subprocess

    if not shutil.which("ss"):
        pytest.skip("ss (iproute2) is not installed")
    o = origins[0]
    p = proxy_with(
        make_proxy, tmp_path, service("pool", "pool.default.svc.cluster.local", [(o, {"v": "1"})]), pool_rule("tcp: {tcpKeepalive: {time: 7s, interval: 3s, probes: 4}}")
    )
    assert get(p, "pool", "/echo").status_code == 200
    out = subprocess.run(["ss", "-tnoH", "state", "established", "dst", "127.0.0.1:%d" % o.port], capture_output=True, text=True).stdout
    # The proxy's side of the pooled connection runs the keepalive timer.
    assert "timer:(keepalive" in out, out


def test_a_request_with_a_body_is_retried_whole(ratings, origins):
    o = origins[0]
    p = ratings(timeout="5s", per_try="2s")
    body = b"x" * 30000 + b"end"
    with http_client() as c:
        r = c.post(p.url("/flaky?key=post&fail=1&code=503"), headers={"Host": "ratings"}, content=body)
    assert r.status_code == 200 and r.text == "try 2\n"
    tries = [q for q in o.requests if q.path == "/flaky"]
    assert len(tries) == 2 and all(q.body == body for q in tries)


def test_a_body_too_large_to_keep_is_not_retried(ratings, origins):
    o = origins[0]
    p = ratings(timeout="5s", per_try="2s")
    with http_client() as c:
        r = c.post(p.url("/flaky?key=big&fail=1&code=503"), headers={"Host": "ratings"}, content=b"y" * 100000)
    assert r.status_code == 503 and o.flaky["big"] == 1


def test_requests_with_bodies_wait_for_a_connection(make_proxy, tmp_path, origins):
    slow = origins[0]
    slow.force_delay = 0.4
    p = proxy_with(make_proxy, tmp_path, service("pool", "pool.default.svc.cluster.local", [(slow, {"v": "1"})]), pool_rule("tcp: {maxConnections: 1}"))
    results = []
    start = threading.Barrier(3)

    def one(i):
        with http_client() as c:
            start.wait()
            r = c.post(p.url("/echo"), headers={"Host": "pool", "x-tag": "w%d" % i}, content=b"%d" % i * 5000)
            results.append((r.status_code, r.json()["body_len"] if r.status_code == 200 else None))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results) == [(200, 5000)] * 3, results


def test_fault_delay_keeps_the_body(actions):
    p, a = actions
    mark = a.mark()
    with http_client() as c:
        r = c.post(p.url("/delayed"), headers={"Host": "actions"}, content=b"z" * 20000)
    assert r.headers.get("server") != "ringside"
    (seen,) = a.requests_since(mark)
    assert seen.body == b"z" * 20000


def test_mission_04_ejection_multiplier_decays_over_healthy_intervals(make_proxy, tmp_path, origins):
    import time

    bad = origins[0]
    bad.force_status = 503
    p = reviews_04(make_proxy, tmp_path, origins, interval="500ms")
    with httpx.Client(timeout=10.0) as c:
        def until_ejections(n):
            for _ in range(400):
                c.get(p.url("/echo"), headers={"Host": "reviews"})
                if p.stderr_text().count("ejected for") >= n:
                    return
            raise AssertionError("no ejection %d" % n)

        until_ejections(1)
        assert "ejected for 1000 ms (ejection 1)" in p.stderr_text()
        bad.force_status = None  # healthy again: back after 1 s, then intervals pass
        time.sleep(2.5)
        bad.force_status = 503
        until_ejections(2)
    # The multiplier went back down while it was healthy: 1 s again, not 2.
    assert "ejected for 1000 ms (ejection 1)" in p.stderr_text().split("ejected for 1000 ms (ejection 1)", 1)[1]


def test_mirror_carries_the_body(actions, origins):
    p, a = actions
    shadow = origins[1]
    body = b"m" * 12345
    with http_client() as c:
        r = c.post(p.url("/mirrored"), headers={"Host": "actions", "x-tag": "mb", "transfer-encoding": "chunked"}, content=iter([body[:5000], body[5000:]]))
    assert r.headers.get("server") != "ringside"
    got = shadow.wait_for(lambda: [q for q in shadow.requests if q.header("x-tag") == "mb" and q.body_complete])
    assert got and got[0].body == body and got[0].header("content-length") == "12345"
    assert [q.body for q in a.requests if q.header("x-tag") == "mb"] == [body]
