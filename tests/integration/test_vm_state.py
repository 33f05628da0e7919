"""Issue 12, "lists that scale": GET /v1/vms answers from the database (a
stopped agent cannot slow it), pages and filters with X-Total-Count and a
400 naming the bad argument; VM states are kept by the reconciler, which
holds a long poll on the agent so a guest exit reaches the database within
a second or two (far below --reconcile-interval) with its last_exit, which
survives a manager restart. Also GET /v1/events, PATCH {ha} and the
run-once lock of two managers."""

import os
import signal
import time

import pytest

from fixtures_manager import Manager, tcp_call, wait_for
from fixtures_vm import kill_vmms
from test_vm_reaping import fc_agent, guest_powers_off  # noqa: F401  (fixture)


def get(m, path):
    """(status, body, headers) of an authenticated GET."""
    if m.token is None:
        m.login()
    return m.raw("GET", path, headers={"Authorization": "Bearer " + m.token})


def create_running(m, n, prefix="vm"):
    ids = []
    for i in range(n):
        st, vm = m.request("POST", "/v1/vms", {"name": "%s-%d" % (prefix, i), "vcpus": 1,
                                               "memory_mib": 128,
                                               "image_id": "rootfs.ext4"})
        assert st == 201, vm
        ids.append(vm["id"])
    for vid in ids:
        assert wait_for(lambda: m.request("GET", "/v1/vms/" + vid)[1]["state"]
                        == "running", timeout=60), vid
    return ids


def test_list_pages_and_filters_from_the_database(manager_factory, fc_agent):
    m = manager_factory(agent_obj=fc_agent)
    ids = create_running(m, 4)
    st, one = m.request("POST", "/v1/vms/%s/stop" % ids[3])
    assert st == 200 and one["state"] == "stopped", one

    st, page, h = get(m, "/v1/vms?limit=2")
    assert st == 200 and h["x-total-count"] == "4", (st, page, h)
    assert [v["id"] for v in page] == ids[:2]
    st, page, h = get(m, "/v1/vms?limit=2&offset=2")
    assert [v["id"] for v in page] == ids[2:] and h["x-total-count"] == "4"
    st, page, h = get(m, "/v1/vms?offset=10")
    assert st == 200 and page == [] and h["x-total-count"] == "4"
    st, page, h = get(m, "/v1/vms?state=running")
    assert [v["id"] for v in page] == ids[:3] and h["x-total-count"] == "3"
    st, page, h = get(m, "/v1/vms?state=stopped&host_id=local")
    assert [v["id"] for v in page] == ids[3:] and h["x-total-count"] == "1"
    st, page, h = get(m, "/v1/vms?host_id=elsewhere")
    assert st == 200 and page == [] and h["x-total-count"] == "0"
    vm = get(m, "/v1/vms?limit=1")[1][0]
    assert vm["host_id"] == "local" and vm["host_name"] == "local", vm
    assert vm["ha"] is False and vm["volume"]["state"] == "ready", vm
    for q, field in (("limit=0", "limit"), ("limit=1001", "limit"), ("limit=x", "limit"),
                     ("limit=", "limit"), ("offset=-1", "offset"),
                     ("offset=1e3", "offset"), ("state=bogus", "state"),
                     ("host_id=" + "h" * 65, "host_id")):
        st, body, _ = get(m, "/v1/vms?" + q)
        assert st == 400 and body["error"]["field"] == field, (q, st, body)

    # The agent frozen: the list and one VM still answer at once, from the
    # database, with the states it holds.
    os.kill(fc_agent.proc.pid, signal.SIGSTOP)
    try:
        for path in ("/v1/vms", "/v1/vms/" + ids[0], "/v1/vms?limit=1&offset=3"):
            t0 = time.monotonic()
            st, body, _ = get(m, path)
            took = time.monotonic() - t0
            assert st == 200 and took < 1.5, (path, took, body)
        st, body, _ = get(m, "/v1/vms")
        assert [v["state"] for v in body] == ["running"] * 3 + ["stopped"]
    finally:
        os.kill(fc_agent.proc.pid, signal.SIGCONT)


@pytest.mark.parametrize("engine", ["sqlite"])
def test_exit_reaches_db_by_long_poll_and_survives_restart(manager_factory, fc_agent):
    # A fallback poll every 60 s: only the long poll explains a quick update.
    m = manager_factory(agent_obj=fc_agent,
                        extra_args=["--reconcile-interval", "60", "--refresh-interval",
                                    "60"])
    vid = create_running(m, 1)[0]
    st, vm = m.request("GET", "/v1/vms/" + vid)
    assert vm["last_exit"] is None, vm
    time.sleep(1.5)  # the worker is now waiting in its long poll
    t0 = time.monotonic()
    guest_powers_off(fc_agent.state_dir, vid)
    stopped = wait_for(lambda: m.request("GET", "/v1/vms/" + vid)[1]["state"] == "stopped",
                       timeout=20, interval=0.1)
    took = time.monotonic() - t0
    assert stopped and took < 5, took
    st, vm = m.request("GET", "/v1/vms/" + vid)
    assert vm["last_exit"]["reason"] == "the guest powered itself off", vm
    assert vm["last_exit"]["code"] == 0 and vm["last_exit"]["requested"] is False, vm
    st, ev = m.request("GET", "/v1/events?object_id=%s&action=vm.exited" % vid)
    assert st == 200 and len(ev) == 1, ev
    assert ev[0]["cause"] == "the guest powered itself off" and ev[0]["host_id"] == "local", ev

    # The manager restarts while the agent is frozen: last_exit comes from
    # the database, not from the agent.
    os.kill(fc_agent.proc.pid, signal.SIGSTOP)
    try:
        m.restart()
        st, vm = m.request("GET", "/v1/vms/" + vid)
        assert st == 200 and vm["state"] == "stopped", vm
        assert vm["last_exit"]["reason"] == "the guest powered itself off", vm
    finally:
        os.kill(fc_agent.proc.pid, signal.SIGCONT)


def test_agent_long_poll(fc_agent):
    """The agent's side: X-Generation, an immediate answer for an old
    generation, a wait for the current one, 400 for bad arguments."""
    def call(path, timeout=60):
        from daemon import unix_call
        return unix_call(fc_agent.socket, "GET", path, timeout=timeout)
    st, body, h = call("/v1/vms")
    assert st == 200 and body.strip() == b"[]", body
    gen = int(h["x-generation"])
    t0 = time.monotonic()
    st, _, h = call("/v1/vms?wait=1&since=%d" % (gen - 1))
    assert st == 200 and time.monotonic() - t0 < 0.9 and int(h["x-generation"]) == gen
    t0 = time.monotonic()
    st, _, h = call("/v1/vms?wait=1&since=%d" % gen)
    assert st == 200 and time.monotonic() - t0 >= 0.9 and int(h["x-generation"]) == gen
    for q, field in (("wait=31&since=1", "wait"), ("wait=x&since=1", "wait"),
                     ("wait=1&since=-2", "since")):
        st, body, _ = call("/v1/vms?" + q)
        assert st == 400 and field.encode() in body, (q, body)


def test_events_filters_paging_and_ha_flag(manager_factory, fc_agent):
    m = manager_factory(agent_obj=fc_agent)
    a, b = create_running(m, 2)
    for vid in (a, b):
        st, _ = m.request("POST", "/v1/vms/%s/stop" % vid)
        assert st == 200
    st, ev = m.request("GET", "/v1/events?object_type=vm&object_id=" + a)
    assert st == 200 and [e["action"] for e in ev] == ["vm.stopped", "vm.started", "vm.created"], ev
    assert all(e["object_id"] == a and e["object_type"] == "vm" for e in ev), ev
    assert all(e["actor"] == "admin" for e in ev) and ev[0]["outcome"] == "ok", ev
    assert ev[0]["at"] >= ev[-1]["at"] > 1600000000000, ev
    st, ev = m.request("GET", "/v1/events?action=vm.stopped")
    assert [e["object_id"] for e in ev] == [b, a], ev
    st, first = m.request("GET", "/v1/events?action=vm.stopped&limit=1")
    assert [e["object_id"] for e in first] == [b], first
    st, rest = m.request("GET", "/v1/events?action=vm.stopped&before=" + first[0]["id"])
    assert [e["object_id"] for e in rest] == [a], rest
    st, old = m.request("GET", "/v1/events?before=%d" % ev[-1]["at"])
    assert st == 200 and all(e["at"] < ev[-1]["at"] for e in old), old
    for q, field in (("limit=0", "limit"), ("limit=1001", "limit"),
                     ("before=nosuchevent", "before"), ("action=" + "a" * 65, "action")):
        st, body = m.request("GET", "/v1/events?" + q)
        assert st == 400 and body["error"]["field"] == field, (q, body)

    st, vm = m.request("PATCH", "/v1/vms/" + a, {"ha": True})
    assert st == 200 and vm["ha"] is True, vm
    st, page, _ = get(m, "/v1/vms?limit=1")
    assert page[0]["id"] == a and page[0]["ha"] is True
    st, vm = m.request("PATCH", "/v1/vms/" + a, {"ha": False})
    assert st == 200 and vm["ha"] is False, vm
    for body, code, field in (({"ha": "yes"}, 400, "ha"), ({}, 400, "ha"),
                              ({"vcpus": 0}, 400, "vcpus")):
        st, r = m.request("PATCH", "/v1/vms/" + a, body)
        assert st == code and r["error"]["field"] == field, (body, r)
    st, r = m.request("PATCH", "/v1/vms/00000000-0000-4000-8000-000000000000",
                      {"ha": True})
    assert st == 404, r
    st, vm = m.request("POST", "/v1/vms", {"name": "ha-1", "vcpus": 1, "memory_mib": 128,
                                           "image_id": "rootfs.ext4", "ha": True})
    assert st == 201 and vm["ha"] is True, vm
    st, r = m.request("POST", "/v1/vms", {"name": "ha-2", "vcpus": 1, "memory_mib": 128,
                                          "image_id": "rootfs.ext4", "ha": 1})
    assert st == 400 and r["error"]["field"] == "ha", r
    assert wait_for(lambda: m.request("GET", "/v1/vms/" + vm["id"])[1]["state"]
                    == "running", timeout=60)


def leader_log(m):
    return "run-once lock taken" in m.log()


@pytest.mark.parametrize("engine", ["postgres"])
def test_two_managers_one_runs_background_work(engine, pg_cluster, fc_agent):
    """Two managers on one PostgreSQL database: exactly one holds the
    run-once lock; the other takes over within seconds when it exits."""
    m1 = Manager(fc_agent, engine="postgres", pg=pg_cluster,
                 extra_args=["--reconcile-interval", "1"]).start()
    m2 = Manager(fc_agent, engine="postgres", pg=pg_cluster,
                 extra_args=["--reconcile-interval", "1"])
    m2.database = m1.database
    m2.start()
    try:
        assert wait_for(lambda: leader_log(m1), timeout=15), m1.log()
        time.sleep(3)
        assert not leader_log(m2), m2.log()
        # Both serve the same data.
        st, vm = m2.request("POST", "/v1/vms", {"name": "two-1", "vcpus": 1,
                                                "memory_mib": 128,
                                                "image_id": "rootfs.ext4"})
        assert st == 201, vm
        assert wait_for(lambda: m1.request("GET", "/v1/vms/" + vm["id"])[1]["state"]
                        == "running", timeout=60)
        t0 = time.monotonic()
        os.kill(m1.proc.pid, signal.SIGKILL)
        m1.proc.wait()
        assert wait_for(lambda: leader_log(m2), timeout=20), m2.log()
        assert time.monotonic() - t0 < 15
        # The new leader reconciles: a guest exit reaches the database.
        guest_powers_off(fc_agent.state_dir, vm["id"])
        assert wait_for(lambda: m2.request("GET", "/v1/vms/" + vm["id"])[1]["state"]
                        == "stopped", timeout=30), m2.log()
    finally:
        m2.cleanup()
        m1.cleanup()
        kill_vmms(fc_agent)


def test_two_managers_on_one_sqlite_file(fc_agent):
    """SQLite: one manager per file holds the lock (flock on <db>.lock)."""
    m1 = Manager(fc_agent).start()
    m2 = Manager(fc_agent)
    m2.database = m1.database
    m2.start()
    try:
        assert wait_for(lambda: leader_log(m1), timeout=15), m1.log()
        time.sleep(2)
        assert not leader_log(m2)
        m1.stop()
        assert wait_for(lambda: leader_log(m2), timeout=15), m2.log()
    finally:
        m2.cleanup()
        m1.cleanup()
