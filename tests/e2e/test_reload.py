"""Configuration reload: SIGHUP and file changes (a ConfigMap symlink swap
included) publish a new snapshot; a request finishes on the snapshot it
started with; a broken resource is rejected alone and its previous version
stays in force; nothing is dropped and no snapshot is leaked."""

import json
import os
import signal
import subprocess
import threading
import time

import httpx
import pytest

import origin as origin_mod
from conftest import SANITIZED, http_client, service_entry


def se_doc(name, host, port):
    return service_entry(name, host, port)


def status(p):
    with http_client() as c:
        r = c.get("http://127.0.0.1:%d/config_status" % p.admin)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    return r.json()


def wait_status(p, pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        s = status(p)
        if pred(s):
            return s
        if time.monotonic() > deadline:
            raise AssertionError("config status never got there: %s" % json.dumps(s, indent=1))
        time.sleep(0.01)


def reload_sighup(p, gen):
    """Sends SIGHUP and waits until every shard starts new requests on gen."""
    os.kill(p.pid, signal.SIGHUP)
    return wait_status(p, lambda s: s["generation"] >= gen and s["generation_on_all_shards"] >= gen)


def served_by(o, seq):
    return any(r.header("x-seq") == str(seq) for r in o.requests)


@pytest.fixture
def origin2():
    o = origin_mod.Origin().start()
    yield o
    o.stop()


def test_sighup_switches_route_and_request_in_flight_finishes_on_its_snapshot(make_proxy, origin, origin2):
    p = make_proxy(hosts={"origin.test": origin.port})
    assert status(p)["generation"] == 1
    result = {}

    def slow():
        with http_client() as c:
            result["r"] = c.get(p.url("/slow?ms=800"), headers={"Host": "origin.test", "x-seq": "slow"})

    t = threading.Thread(target=slow)
    t.start()
    origin.wait_for_request("/slow")
    p.config_path.write_text(se_doc("origin-se", "origin.test", origin2.port))
    s = reload_sighup(p, 2)
    # The slow request still holds generation 1.
    assert s["oldest_generation_in_use"] == 1
    assert p.metrics().value("ringside_config_snapshots_retired") == 1
    r = p.get("/echo", headers={"x-seq": "new"})
    assert r.status_code == 200 and served_by(origin2, "new") and not served_by(origin, "new")
    t.join(10)
    assert result["r"].status_code == 200
    assert served_by(origin, "slow") and not served_by(origin2, "slow")
    # Once it is done, nothing holds generation 1 and it is freed.
    wait_status(p, lambda s: s["oldest_generation_in_use"] == 2)
    m = p.wait_metric(lambda m: m.value("ringside_config_snapshots_retired") == 0)
    assert m.value("ringside_config_snapshots_retired") == 0
    assert m.value("ringside_config_generation") == 2
    assert m.value("ringside_config_reloads_total", result="applied") == 1


def two_services(origin_a, origin_b, port_b_text=None):
    b = se_doc("b-se", "b.test", origin_b.port)
    if port_b_text is not None:
        b = b.replace("number: 80", "number: %s" % port_b_text)
    return se_doc("a-se", "a.test", origin_a.port) + "---\n" + b


def test_broken_resource_is_rejected_alone_and_its_last_good_version_stays(make_proxy, origin, origin2):
    p = make_proxy(hosts={"a.test": origin.port})
    p.config_path.write_text(two_services(origin, origin))
    reload_sighup(p, 2)
    assert p.get("/echo", host="b.test").status_code == 200
    # a.test moves to origin2; b.test is broken: its old version must stay.
    text = two_services(origin2, origin2, port_b_text="eighty")
    p.config_path.write_text(text)
    s = reload_sighup(p, 3)
    assert s["rejected_resources"] == 1 and s["kept_resources"] == 1
    (rej,) = s["rejected"]
    assert rej["resource"] == "ServiceEntry/default/b-se"
    assert rej["file"] == str(p.config_path)
    assert rej["in_force"] == "the version loaded before"
    errors = [d for d in s["problems"] if d["level"] == "error"]
    assert len(errors) == 1
    line = text.splitlines()[errors[0]["line"] - 1]
    assert "eighty" in line and errors[0]["column"] == line.index("eighty") + 1
    assert "spec.ports[0].number" in errors[0]["message"]
    r = p.get("/echo", host="a.test", headers={"x-seq": "a"})
    assert r.status_code == 200 and served_by(origin2, "a")
    r = p.get("/echo", host="b.test", headers={"x-seq": "b"})
    assert r.status_code == 200 and served_by(origin, "b")
    assert p.metrics().value("ringside_config_rejected_resources") == 1
    assert "ServiceEntry/default/b-se" in p.stderr_text()
    # /config_dump shows the rejected version and the kept one, with positions.
    with http_client() as c:
        dump = c.get("http://127.0.0.1:%d/config_dump" % p.admin).json()
    assert dump["generation"] == 3
    st = {(r["name"], r["status"]) for r in dump["config"]["resources"]}
    assert st == {("a-se", "active"), ("b-se", "rejected"), ("b-se", "kept")}
    kept = [r for r in dump["config"]["resources"] if r["status"] == "kept"][0]
    assert kept["object"]["spec"]["ports"][0]["number"] == 80
    assert kept["object"]["spec"]["endpoints"][0]["ports"]["http"] == origin.port
    # Fixing the file applies the new version and clears the rejection.
    p.config_path.write_text(two_services(origin2, origin2))
    s = reload_sighup(p, 4)
    assert s["rejected_resources"] == 0 and s["rejected"] == []
    r = p.get("/echo", host="b.test", headers={"x-seq": "b2"})
    assert r.status_code == 200 and served_by(origin2, "b2")


def test_yaml_syntax_error_keeps_the_files_resources(make_proxy, origin, origin2):
    p = make_proxy(hosts={"a.test": origin.port})
    p.config_path.write_text(two_services(origin, origin))
    reload_sighup(p, 2)
    # The first document is new and valid; a syntax error cuts the file
    # before the second: b-se keeps its version, a-se takes the new one.
    p.config_path.write_text(se_doc("a-se", "a.test", origin2.port) + "---\nkind: [unclosed\n")
    s = reload_sighup(p, 3)
    assert s["kept_resources"] == 1
    assert any("unclosed" in d["message"] or d["level"] == "error" for d in s["problems"])
    assert p.get("/echo", host="b.test", headers={"x-seq": "b"}).status_code == 200
    assert served_by(origin, "b")
    assert p.get("/echo", host="a.test", headers={"x-seq": "a"}).status_code == 200
    assert served_by(origin2, "a")


def test_deleting_a_resource_from_a_good_file_removes_it(make_proxy, origin):
    p = make_proxy(hosts={"a.test": origin.port})
    p.config_path.write_text(two_services(origin, origin))
    reload_sighup(p, 2)
    assert p.get("/echo", host="b.test").status_code == 200
    p.config_path.write_text(se_doc("a-se", "a.test", origin.port))
    s = reload_sighup(p, 3)
    assert s["kept_resources"] == 0
    assert p.get("/echo", host="b.test").status_code == 404


def write_configmap(d, version, text):
    """Kubernetes' atomic update of a ConfigMap volume: a new timestamped
    directory, a `..data` link swapped to it by rename, the old one removed."""
    new = d / ("..2026_11_26_%d" % version)
    new.mkdir()
    (new / "mesh.yaml").write_text(text)
    tmp = d / "..data_tmp"
    os.symlink(new.name, tmp)
    old = os.readlink(d / "..data") if (d / "..data").is_symlink() else None
    os.rename(tmp, d / "..data")
    if not (d / "mesh.yaml").is_symlink():
        os.symlink("..data/mesh.yaml", d / "mesh.yaml")
    if old:
        for f in (d / old).iterdir():
            f.unlink()
        (d / old).rmdir()


def test_configmap_symlink_swap_reloads(make_proxy, origin, origin2, tmp_path):
    cm = tmp_path / "cm"
    cm.mkdir()
    write_configmap(cm, 1, se_doc("a-se", "a.test", origin.port))
    p = make_proxy(hosts={"unused.test": origin.port}, extra_args=["--config", str(cm)])
    assert p.get("/echo", host="a.test", headers={"x-seq": "1"}).status_code == 200
    assert served_by(origin, "1")
    write_configmap(cm, 2, se_doc("a-se", "a.test", origin2.port))
    s = wait_status(p, lambda s: s["generation"] >= 2 and s["generation_on_all_shards"] >= 2)
    assert s["last_reload"]["trigger"] == "file change"
    assert s["problems"] == []
    assert p.get("/echo", host="a.test", headers={"x-seq": "2"}).status_code == 200
    assert served_by(origin2, "2")
    # An edit in place of a plain file is seen as well.
    p.config_path.write_text(se_doc("c-se", "c.test", origin2.port))
    wait_status(p, lambda s: s["generation"] >= 3)
    assert p.get("/echo", host="c.test").status_code == 200


def test_configmap_file_given_alone_reloads_on_swap(make_proxy, origin, origin2, tmp_path):
    cm = tmp_path / "cm"
    cm.mkdir()
    write_configmap(cm, 1, se_doc("a-se", "a.test", origin.port))
    p = make_proxy(hosts={"unused.test": origin.port}, extra_args=["--config", str(cm / "mesh.yaml")])
    assert p.get("/echo", host="a.test").status_code == 200
    write_configmap(cm, 2, se_doc("a-se", "a.test", origin2.port))
    wait_status(p, lambda s: s["generation"] >= 2 and s["generation_on_all_shards"] >= 2)
    assert p.get("/echo", host="a.test", headers={"x-seq": "2"}).status_code == 200
    assert served_by(origin2, "2")


def test_a_new_subdirectory_is_watched(make_proxy, origin, tmp_path):
    d = tmp_path / "conf"
    d.mkdir()
    (d / "a.yaml").write_text(se_doc("a-se", "a.test", origin.port))
    p = make_proxy(extra_args=["--config", str(d)])
    (d / "sub").mkdir()
    wait_status(p, lambda s: s["reloads"]["unchanged"] >= 1)
    (d / "sub" / "b.yaml").write_text(se_doc("b-se", "b.test", origin.port))
    wait_status(p, lambda s: s["generation"] >= 2)
    assert p.get("/echo", host="b.test").status_code == 200


def test_touching_a_file_without_change_is_not_a_new_generation(make_proxy, origin):
    p = make_proxy()
    text = p.config_path.read_text()
    p.config_path.write_text(text)
    wait_status(p, lambda s: s["reloads"]["unchanged"] >= 1)
    assert status(p)["generation"] == 1


def test_reload_100_times_under_load(make_proxy, origin, origin2):
    """100 reloads alternating the route between two origins while client
    threads send requests on keep-alive connections: every request succeeds,
    no connection is dropped, each response comes from the origin of the
    snapshot in force when it was sent, and memory returns to its level."""
    origins = [origin, origin2]
    p = make_proxy(hosts={"origin.test": origin.port})
    nthreads, reloads = 3, int(os.environ.get("RELOADS", "100"))
    stop = threading.Event()
    # Per request: (seq, generation in force on every shard when it was sent,
    # newest generation begun before its answer came, status).
    log = []
    errors = []
    gen_seen = [1]  # highest generation every shard has adopted, as last observed
    gen_sent = [1]  # highest generation SIGHUP has been sent for
    lock = threading.Lock()
    seq = [0]

    def client():
        with httpx.Client(timeout=10.0) as c:
            while not stop.is_set():
                with lock:
                    seq[0] += 1
                    n = seq[0]
                    lo, hi = gen_seen[0], gen_sent[0]
                try:
                    r = c.get(p.url("/echo"), headers={"Host": "origin.test", "x-seq": str(n)})
                    with lock:
                        # A reload begun before the answer came makes it ambiguous.
                        hi = max(hi, gen_sent[0])
                        log.append((n, lo, hi, r.status_code))
                except httpx.HTTPError as e:
                    with lock:
                        errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(nthreads)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        rss0 = p.rss_kib()[0]
        for g in range(2, reloads + 2):
            with lock:
                gen_sent[0] = g
            # Written as Kubernetes and careful tools write: whole, then
            # renamed in. Rewriting in place would let the watch's debounced
            # reload of the previous write read a truncated file mid-write.
            tmp = p.config_path.with_name(".next.yaml.tmp")
            tmp.write_text(se_doc("origin-se", "origin.test", origins[(g - 1) % 2].port))
            os.replace(tmp, p.config_path)
            reload_sighup(p, g)
            with lock:
                gen_seen[0] = g
            time.sleep(0.005)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert errors == []
    assert len(log) > reloads
    assert all(st == 200 for _, _, _, st in log), [e for e in log if e[3] != 200]
    # Generation g routes to origins[(g - 1) % 2]; a request sent while
    # g was in force on every shard and no newer one was published must
    # have gone there; one sent during a swap may go to either side.
    reached = {}
    for i, o in enumerate(origins):
        for r in o.requests:
            reached.setdefault(r.header("x-seq"), []).append(i)
    checked = 0
    for n, lo, hi, _ in log:
        got = reached.get(str(n), [])
        assert len(got) == 1, "request %d reached %d origins" % (n, len(got))
        if lo == hi:
            assert got[0] == (lo - 1) % 2, "request %d sent on generation %d reached the wrong origin" % (n, lo)
            checked += 1
    assert checked > reloads // 2
    m = p.metrics()
    assert m.value("ringside_downstream_cx_total") == nthreads, "a client connection was dropped"
    # Each SIGHUP applies one; the watch may apply a rename before its SIGHUP.
    applied = m.value("ringside_config_reloads_total", result="applied")
    assert applied >= reloads
    s = wait_status(p, lambda s: s["oldest_generation_in_use"] == applied + 1)
    assert s["generation"] == applied + 1
    p.wait_metric(lambda m: m.value("ringside_config_snapshots_retired") == 0)
    assert p.metrics().value("ringside_config_snapshots_retired") == 0
    if not SANITIZED:
        rss1 = p.rss_kib()[0]
        # 100 snapshots of a few KiB each would show; allocator slack does not.
        assert rss1 - rss0 < 4096, "RSS grew from %d to %d KiB" % (rss0, rss1)


def test_reload_that_cannot_read_the_config_keeps_the_snapshot(make_proxy, origin):
    p = make_proxy()
    p.config_path.unlink()
    os.kill(p.pid, signal.SIGHUP)
    s = wait_status(p, lambda s: s["reloads"]["failed"] == 1)
    assert s["generation"] == 1
    assert s["last_reload"]["result"] == "failed"
    assert "No such file" in s["last_reload"]["error"]
    assert p.get("/echo").status_code == 200
    assert p.metrics().value("ringside_config_reloads_total", result="failed") == 1
    assert "generation 1 stays in force" in p.stderr_text()


def test_workload_identity_selects_policies(make_proxy, origin, tmp_path):
    pol = tmp_path / "policies.yaml"
    pol.write_text(
        "apiVersion: security.istio.io/v1\n"
        "kind: AuthorizationPolicy\n"
        "metadata: {name: for-v2, namespace: shop}\n"
        "spec: {selector: {matchLabels: {version: v2}}}\n"
        "---\n"
        "apiVersion: security.istio.io/v1\n"
        "kind: AuthorizationPolicy\n"
        "metadata: {name: for-v1, namespace: shop}\n"
        "spec: {selector: {matchLabels: {version: v1}}}\n"
    )
    p = make_proxy(
        extra_args=["--config", str(pol), "--namespace", "shop", "--service-account", "cart", "--label", "app=cart", "--label", "version=v2"]
    )
    with http_client() as c:
        d = c.get("http://127.0.0.1:%d/config_dump" % p.admin).json()
    w = d["workload"]
    assert w["spiffe_id"] == "spiffe://cluster.local/ns/shop/sa/cart"
    assert w["labels"] == {"app": "cart", "version": "v2"}
    assert w["selected"]["AuthorizationPolicy"] == ["AuthorizationPolicy/shop/for-v2"]


@pytest.mark.parametrize("label", ["app", "=v", "app=v@1", "-app=v", "a" * 64 + "=v"])
def test_a_bad_label_is_refused_at_start(label, tmp_path):
    from conftest import RINGSIDE_BIN

    if not RINGSIDE_BIN:
        pytest.skip("RINGSIDE_BIN is not set")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(se_doc("x", "x.test", 1))
    r = subprocess.run([RINGSIDE_BIN, "proxy", "--config", str(cfg), "--label", label], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2, r.stderr
    assert "--label" in r.stderr and label.split("=")[0][:10] in r.stderr
