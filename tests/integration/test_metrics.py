"""GET /metrics (issue 14): Prometheus text format 0.0.4 parsed by the
reference parser (prometheus_client), every family documented, values
that agree with the API, request counts by route template (never a raw
path with an id), monotonic counters, and its authentication."""

from prometheus_client.parser import text_string_to_metric_families

import pytest

from fixtures_agent import Agent
from fixtures_manager import smb_config, wait_for
from fixtures_vm import kill_vmms, put_image

MiB = 1 << 20


@pytest.fixture
def fc_agent(fake_fc):
    a = Agent(extra_args=["--firecracker-path", fake_fc.path,
                          "--report-memory-mib", "2048"]).start()
    put_image(a, "vmlinux", 0, b"\x7fELF fake kernel for the fake firecracker")
    put_image(a, "rootfs.ext4", 4 << 20)
    yield a
    kill_vmms(a)
    a.cleanup()


def scrape(m, token=None):
    st, text, hdrs = m.raw("GET", "/metrics",
                           headers={"Authorization": "Bearer " + (token or m.token)})
    assert st == 200, text
    assert hdrs["content-type"].startswith("text/plain; version=0.0.4")
    fams = list(text_string_to_metric_families(text))
    out = {}
    for fam in fams:
        assert fam.documentation, fam.name  # a # HELP line
        assert fam.type in ("gauge", "counter", "histogram"), (fam.name, fam.type)
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(series, metric, **labels):
    """The one sample of metric with these labels (and maybe others)."""
    got = [v for lb, v in series.get(metric, [])
           if all(lb.get(k) == w for k, w in labels.items())]
    assert len(got) == 1, (metric, labels, series.get(metric))
    return got[0]


@pytest.mark.parametrize("engine", ["sqlite"])
def test_metrics_parse_and_agree_with_the_api(manager_factory, fc_agent, smbd):
    m = manager_factory(agent_obj=fc_agent)
    m.login()
    st, vm = m.request("POST", "/v1/vms", {"name": "m-1", "vcpus": 1, "memory_mib": 256,
                                           "image_id": "rootfs.ext4"})
    assert st == 201, vm
    assert wait_for(lambda: m.request("GET", "/v1/vms/" + vm["id"])[1]["state"]
                    == "running", timeout=60)
    st, e = m.create_backend("nope", smb_config(smbd, share="no-such-share"))
    assert st == 422 and e["error"]["code"] == "smb_share_not_found", e

    first = scrape(m)
    for _ in range(3):
        assert m.request("GET", "/v1/vms/" + vm["id"])[0] == 200
    assert m.request("GET", "/v1/vms/not-a-vm")[0] == 404
    s = scrape(m)

    # Backends as the API shows them.
    st, backends = m.request("GET", "/v1/storage/backends")
    assert value(s, "nqrust_backends") == len(backends)
    st, vols = m.request("GET", "/v1/volumes")
    for b in backends:
        assert value(s, "nqrust_backend_up", backend=b["id"]) == (b["status"] == "ok")
        assert value(s, "nqrust_backend_status", backend=b["id"],
                     status=b["status"]) == 1
        cap = b["capacity"]
        total = value(s, "nqrust_backend_capacity_total_bytes", backend=b["id"])
        assert total == cap["total_bytes"]
        assert value(s, "nqrust_backend_capacity_used_bytes", backend=b["id"]) + \
            value(s, "nqrust_backend_capacity_available_bytes", backend=b["id"]) == total
        assert value(s, "nqrust_backend_volumes", backend=b["id"]) == \
            len([v for v in vols if v["backend_id"] == b["id"]])
    assert value(s, "nqrust_backend_mounts", backend="localfile-default",
                 host="local") == 1
    # The failed add, by its code; the clone of the VM's rootfs.
    assert value(s, "nqrust_backend_probe_failures_total", backend="", kind="smb",
                 code="smb_share_not_found") == 1
    assert value(s, "nqrust_backend_clone_duration_seconds_count",
                 backend="localfile-default") == 1
    buckets = [(float(lb["le"]), v) for lb, v in
               s["nqrust_backend_clone_duration_seconds_bucket"]]
    assert buckets == sorted(buckets) and buckets[-1] == (float("inf"), 1)

    # Hosts and VMs.
    st, hosts = m.request("GET", "/v1/hosts")
    for h in hosts:
        assert value(s, "nqrust_host_status", host=h["id"], status=h["status"]) == 1
        assert value(s, "nqrust_host_cpus", host=h["id"]) == h["cpus"]
        assert value(s, "nqrust_host_memory_total_bytes", host=h["id"]) == \
            h["memory_mib"] * MiB == 2048 * MiB
        assert value(s, "nqrust_host_memory_free_bytes", host=h["id"]) == \
            h["memory_free_mib"] * MiB
        assert value(s, "nqrust_host_vms", host=h["id"]) == 1
    assert value(s, "nqrust_vm_state", vm=vm["id"], name="m-1", host="local",
                 state="running") == 1
    assert value(s, "nqrust_vm_uptime_seconds", vm=vm["id"]) >= 0

    # Requests by route template: no ids, counters only grow.
    route = "/v1/vms/{id}"
    before = value(first, "nqrust_http_requests_total", method="GET", route=route,
                   code="200")
    after = value(s, "nqrust_http_requests_total", method="GET", route=route,
                  code="200")
    assert after == before + 3
    assert value(s, "nqrust_http_requests_total", method="GET", route=route,
                 code="404") == 1
    assert value(s, "nqrust_http_requests_total", method="POST", route="/v1/vms",
                 code="201") == 1
    for name, samples in s.items():
        for lb, _ in samples:
            assert vm["id"] not in lb.get("route", ""), lb
            assert "not-a-vm" not in str(lb), lb
    for name, samples in first.items():
        if name.endswith("_total"):
            for lb, v in samples:
                assert value(s, name, **lb) >= v, (name, lb)

    # Authentication: a token (a viewer's will do), as every /v1 route.
    st, _, _ = m.raw("GET", "/metrics")
    assert st == 401
    st, _ = m.request("POST", "/v1/users", {"username": "ro", "password": "ro-pass-1234",
                                            "role": "viewer"})
    assert st == 201
    st, body, _ = m.raw("POST", "/v1/auth/login", {"username": "ro",
                                                  "password": "ro-pass-1234"})
    assert "nqrust_vm_state" in scrape(m, body["token"])
