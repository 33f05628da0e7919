"""Issue 14, events: GET /v1/events filters (object_type, object_id,
action with a vm.* prefix, outcome, since/until), cursor paging
(X-Next-Cursor, X-Total-Count, before/after) and 400 naming the field;
backend added / add failed (with its classified cause) / changed /
removed, failed logins (the name, never the password); the refresher
records a backend failing and recovering once each, not once per probe,
and a VM on that backend carries backend_status; the log is trimmed to
its bound."""

import json
import os
import select
import subprocess
import time
import urllib.parse

import pytest

from fixtures_agent import build_path
from fixtures_manager import smb_config, wait_for
from smbd import Smbd
from test_vm_reaping import fc_agent  # noqa: F401  (fixture)


def events(m, **q):
    """(events, headers) of GET /v1/events?q."""
    if m.token is None:
        m.login()
    st, body, hdrs = m.raw("GET", "/v1/events?" + urllib.parse.urlencode(q),
                           headers={"Authorization": "Bearer " + m.token})
    assert st == 200, (q, body)
    return body, {k.lower(): v for k, v in hdrs.items()}


def test_filters_paging_and_storage_events(manager, agent, smbd):
    m = manager
    st, bad = m.create_backend("ev-bad", smb_config(smbd, "secure", user=True,
                                                     password="wrong password"))
    assert st == 422 and bad["error"]["code"] == "smb_auth_failed", bad
    st, b = m.create_backend("ev-good", smb_config(smbd, "guest"))
    assert st == 201, b
    st, _ = m.request("PATCH", "/v1/storage/backends/" + b["id"], {"name": "ev-renamed"})
    assert st == 200
    assert m.request("DELETE", "/v1/storage/backends/" + b["id"])[0] == 204
    wrong = "not the password " + m.admin_password[-6:]
    st, _, _ = m.raw("POST", "/v1/auth/login", {"username": "admin", "password": wrong})
    assert st == 401

    ev, h = events(m, action="backend.*")
    assert [e["action"] for e in ev] == ["backend.removed", "backend.detached",
                                         "backend.changed", "backend.added",
                                         "backend.add_failed"], ev
    assert int(h["x-total-count"]) == 5 and "x-next-cursor" not in h, h
    failed = ev[-1]
    assert failed["outcome"] == "failed" and failed["object_id"] == "ev-bad", failed
    assert failed["cause"].startswith("smb_auth_failed: "), failed
    assert all(e["object_id"] == b["id"] for e in ev[:4]), ev
    # Who did it: the signed-in user of the request, not a generic "api".
    assert {e["actor"] for e in ev} == {"admin"}, ev
    ev, _ = events(m, outcome="failed")
    assert {e["action"] for e in ev} == {"backend.add_failed", "user.login_failed"}, ev
    login, _ = events(m, object_type="user", action="user.login_failed")
    assert login[0]["object_id"] == "admin" and login[0]["cause"] == "127.0.0.1", login
    assert not any(wrong.encode() in r for r in m.replies if isinstance(r, bytes))

    # Paging: newest first, pages of 2 joined by the cursor, no gaps or repeats.
    full, h = events(m)
    total = int(h["x-total-count"])
    assert total == len(full) >= 6
    got, cursor = [], None
    while True:
        q = {"limit": 2}
        if cursor:
            q["before"] = cursor
        page, h = events(m, **q)
        got += page
        cursor = h.get("x-next-cursor")
        if not cursor:
            break
        assert cursor == page[-1]["id"] and int(h["x-total-count"]) == total
    assert [e["id"] for e in got] == [e["id"] for e in full]
    newer, _ = events(m, after=full[-1]["id"], limit=1000)
    assert [e["id"] for e in newer] == [e["id"] for e in reversed(full[:-1])]
    mid = full[len(full) // 2]["at"]
    since, _ = events(m, since=mid)
    assert since and all(e["at"] >= mid for e in since)
    until, _ = events(m, until=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                             time.gmtime(mid / 1000.0 - 1)))
    assert all(e["at"] < mid for e in until)
    for q, field in (({"since": "yesterday"}, "since"), ({"action": "VM.*"}, "action"),
                     ({"action": "vm.*.x*"}, "action"), ({"limit": 1001}, "limit"),
                     ({"since": 2000, "until": 1000}, "until"),
                     ({"before": full[0]["id"], "after": full[-1]["id"]}, "after")):
        st, body = m.request("GET", "/v1/events?" + urllib.parse.urlencode(q))
        assert st == 400 and body["error"]["field"] == field, (q, body)


def nqrust(m, *args, **kw):
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "NQRUST_URL": m.url,
           "NQRUST_TOKEN": m.token}
    return subprocess.Popen([build_path("nqrust")] + list(args), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, **kw)


@pytest.mark.parametrize("engine", ["sqlite"])
def test_cli_lists_and_follows(manager):
    m = manager
    m.login()
    for i in range(3):
        m.raw("POST", "/v1/auth/login", {"username": "u%d" % i, "password": "x"})
    out, err = nqrust(m, "events", "--action", "user.*", "--limit", "2").communicate(
        timeout=60)
    lines = out.decode().splitlines()
    assert len(lines) == 2 and "user u1" in lines[0] and "user u2" in lines[1], (out, err)
    assert "cause: 127.0.0.1" in lines[1] and "failed" in lines[1], lines
    out, _ = nqrust(m, "--json", "events", "--object", "user:u0").communicate(timeout=60)
    assert [e["object_id"] for e in json.loads(out)] == ["u0"], out
    out, err = nqrust(m, "events", "--since", "never").communicate(timeout=60)
    assert b"since" in err, err

    p = nqrust(m, "events", "-f", "--json", "--object", "user:late", "--limit", "1")
    try:
        time.sleep(1.5)  # on purpose: the first poll has run
        m.raw("POST", "/v1/auth/login", {"username": "late", "password": "x"})
        ready, _, _ = select.select([p.stdout], [], [], 30)
        assert ready, "no event followed"
        e = json.loads(os.read(p.stdout.fileno(), 65536).decode().splitlines()[0])
        assert e["object_id"] == "late" and e["action"] == "user.login_failed", e
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("engine", ["sqlite"])
def test_backend_failure_recorded_once_and_flagged_on_its_vms(manager_factory, fc_agent):
    m = manager_factory(agent_obj=fc_agent, extra_args=["--events-max-rows", "10"])
    s = Smbd().start()
    try:
        st, b = m.create_backend("flaky", smb_config(s, "guest"))
        assert st == 201, b
        st, vm = m.request("POST", "/v1/vms", {
            "name": "on-flaky", "vcpus": 1, "memory_mib": 128,
            "image_id": "rootfs.ext4", "storage_backend_id": b["id"]})
        assert st == 201, vm
        assert wait_for(lambda: m.request("GET", "/v1/vms/" + vm["id"])[1]["state"]
                        == "running", 60)
        assert m.request("GET", "/v1/vms/" + vm["id"])[1]["backend_status"] == "ok"

        s._stop_proc()
        assert wait_for(lambda: m.backends()["flaky"]["status"] == "unreachable", 60)
        time.sleep(2)  # on purpose: two more refresher rounds (interval 1 s)
        row = m.backends()["flaky"]
        # The server's silence, not the (live) agent's: never agent_unavailable.
        assert row["status_error"]["code"] in ("smb_unreachable", "smb_timeout"), row
        assert time.time() - 60 < row["status_since"] <= row["checked_at"], row
        v = m.request("GET", "/v1/vms/" + vm["id"])[1]
        assert v["backend_status"] == "unreachable", v
        assert v["backend_error"]["code"] == row["status_error"]["code"], v
        fails, _ = events(m, object_id=b["id"], action="backend.failed")
        assert len(fails) == 1 and fails[0]["actor"] == "refresher", fails
        assert fails[0]["cause"].startswith(row["status_error"]["code"] + ": "), fails

        s._write_conf()
        s._spawn_and_wait()
        assert wait_for(lambda: m.backends()["flaky"]["status"] == "ok", 60)
        time.sleep(1.5)  # on purpose: more rounds, still one event each
        ev, _ = events(m, object_id=b["id"], action="backend.*")
        acts = [e["action"] for e in ev]
        assert acts.count("backend.recovered") == 1 and acts.count("backend.failed") == 1
        assert acts.index("backend.recovered") < acts.index("backend.failed"), acts
        # Gone before the server goes: a dead share makes teardown slow.
        assert m.request("DELETE", "/v1/vms/" + vm["id"])[0] == 204
        assert m.request("DELETE", "/v1/storage/backends/" + b["id"])[0] == 204
    finally:
        s.stop()

    # The bound: failed logins add events; the refresher trims to 10.
    for i in range(15):
        m.raw("POST", "/v1/auth/login", {"username": "nobody%d" % i, "password": "x"})
    assert wait_for(lambda: int(events(m, limit=1)[1]["x-total-count"]) <= 10, 30)
    ev, _ = events(m)
    assert ev[0]["object_id"].startswith("nobody"), json.dumps(ev[:2])
