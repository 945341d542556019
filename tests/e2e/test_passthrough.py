"""DestinationRule loadBalancer PASSTHROUGH with real traffic capture.

Each test makes a network namespace of its own, with loopback only, where
iptables REDIRECTs the client's connections (those from 127.0.0.3, so that
the proxy's own upstream connections are left alone, as istio-iptables
leaves the proxy's user alone) to the proxy's outbound port. The proxy,
the origins and the client all run in that namespace; the test's thread
enters it with setns(2), and what it starts inherits it. Needs root, `ip`
(iproute2) and `iptables` (tools/deps.sh test installs them); skipped with
the reason otherwise.
"""

import contextlib
import ctypes
import os
import random
import shutil
import subprocess

import httpx
import pytest

import origin as origin_mod
from test_routing import proxy_with

CLONE_NEWNET = 0x40000000
CLIENT_IP = "127.0.0.3"


def _run(*args):
    return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)


@contextlib.contextmanager
def netns():
    """A fresh network namespace that the calling thread is in while the
    block runs (its children and the threads it starts stay in it)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a network namespace and iptables rules")
    for tool, pkg in (("ip", "iproute2"), ("iptables", "iptables")):
        if not shutil.which(tool):
            pytest.skip("%s not found (Debian package %s; tools/deps.sh test installs it)" % (tool, pkg))
    name = "rs-pt-%d-%d" % (os.getpid(), random.randrange(1 << 30))
    r = _run("ip", "netns", "add", name)
    if r.returncode != 0:
        pytest.skip("cannot create a network namespace: %s" % r.stderr.strip())
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open("/run/netns/%s" % name, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            pytest.skip("setns into %s failed: %s" % (name, os.strerror(ctypes.get_errno())))
        try:
            r = _run("ip", "link", "set", "lo", "up")
            assert r.returncode == 0, r.stderr
            yield name
        finally:
            assert libc.setns(home, CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())
    finally:
        os.close(target)
        os.close(home)
        _run("ip", "netns", "del", name)


def capture(proxy_port):
    """istio-iptables' outbound capture, reduced to the test client: its TCP
    connections go to the proxy's port, keeping their original destination
    for SO_ORIGINAL_DST."""
    r = _run("iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-s", CLIENT_IP, "-j", "REDIRECT", "--to-ports", str(proxy_port))
    if r.returncode != 0:
        pytest.skip("iptables cannot REDIRECT here (nat table or kernel modules missing): %s" % r.stderr.strip())


def client():
    """A client whose connections come from CLIENT_IP, so that they are captured."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=CLIENT_IP), timeout=10.0, trust_env=False)


def config(endpoint, lb):
    """Host pt.example (a ServiceEntry whose one endpoint is endpoint) and
    host lb.example (the same endpoint), only pt.example with PASSTHROUGH."""
    docs = []
    for name, policy in (("pt", lb), ("lb", None)):
        docs.append(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
            "metadata: {name: %s, namespace: default}\n"
            "spec:\n  hosts: [%s.example]\n  location: MESH_EXTERNAL\n  resolution: STATIC\n"
            "  ports: [{number: 80, name: http, protocol: HTTP}]\n"
            "  endpoints: [{address: %s, ports: {http: %d}}]\n" % (name, name, endpoint[0], endpoint[1])
        )
        if policy:
            docs.append(
                "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                "metadata: {name: %s, namespace: default}\n"
                "spec:\n  host: %s.example\n  trafficPolicy:\n    loadBalancer: {%s}\n" % (name, name, policy)
            )
    return docs


def served(o, tag):
    return [r for r in o.requests if r.target == "/echo?t=" + tag]


@pytest.fixture
def captured(make_proxy, tmp_path):
    """(proxy, listed, other): inside a namespace with capture on, a proxy
    whose pt.example and lb.example have one endpoint, origin `listed`
    (127.0.0.2); origin `other` (127.0.0.5) is no endpoint of anything."""
    with netns():
        listed = origin_mod.Origin("127.0.0.2").start()
        other = origin_mod.Origin("127.0.0.5").start()
        try:
            p = proxy_with(make_proxy, tmp_path, *config(("127.0.0.2", listed.port), "simple: PASSTHROUGH"))
            capture(p.outbound)
            yield p, listed, other
        finally:
            listed.stop()
            other.stop()


def test_passthrough_goes_to_the_original_destination(captured):
    p, listed, other = captured
    with client() as c:
        # The client asks for 127.0.0.5, which no ServiceEntry lists: the
        # proxy connects there, not to pt.example's endpoint.
        r = c.get("http://127.0.0.5:%d/echo?t=pt-other" % other.port, headers={"Host": "pt.example"})
        assert r.status_code == 200, r.text
        # The same with the endpoint's own address.
        r = c.get("http://127.0.0.2:%d/echo?t=pt-listed" % listed.port, headers={"Host": "pt.example"})
        assert r.status_code == 200, r.text
        # Without PASSTHROUGH the original destination does not matter.
        r = c.get("http://127.0.0.5:%d/echo?t=lb-other" % other.port, headers={"Host": "lb.example"})
        assert r.status_code == 200, r.text
    assert len(served(other, "pt-other")) == 1 and not served(listed, "pt-other")
    assert len(served(listed, "pt-listed")) == 1 and not served(other, "pt-listed")
    assert len(served(listed, "lb-other")) == 1 and not served(other, "lb-other")
    # It went through the proxy (x-forwarded-proto added), with its Host.
    req = served(other, "pt-other")[0]
    assert req.header("host") == "pt.example"
    assert req.header("x-forwarded-proto") == "http"


def test_passthrough_keeps_each_connections_destination(captured):
    p, listed, other = captured
    # Two keep-alive connections to two destinations, interleaved: each
    # request goes where its own connection was headed.
    with client() as a, client() as b:
        for i in range(5):
            assert a.get("http://127.0.0.5:%d/echo?t=a%d" % (other.port, i), headers={"Host": "pt.example"}).status_code == 200
            assert b.get("http://127.0.0.2:%d/echo?t=b%d" % (listed.port, i), headers={"Host": "pt.example"}).status_code == 200
    assert sorted(r.target for r in other.requests) == ["/echo?t=a%d" % i for i in range(5)]
    assert sorted(r.target for r in listed.requests) == ["/echo?t=b%d" % i for i in range(5)]


def test_passthrough_without_capture_is_503_no_healthy_upstream(captured):
    p, listed, other = captured
    # Sent to the proxy's port itself (as an application without capture
    # does): no original destination, and no loop back into the proxy.
    with httpx.Client(timeout=10.0, trust_env=False) as c:
        r = c.get(p.url("/echo?t=direct"), headers={"Host": "pt.example"})
        assert r.status_code == 503
        assert r.text.strip() == "no healthy upstream"
        assert c.get(p.url("/echo?t=direct-lb"), headers={"Host": "lb.example"}).status_code == 200
    assert not served(other, "direct") and not served(listed, "direct")
