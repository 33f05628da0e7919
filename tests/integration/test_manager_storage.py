"""Manager + real agent + real smbd: create, probe failures, duplicates,
capacity, PATCH, default switching. Runs on SQLite and PostgreSQL."""

import os

import pytest

from fixtures_manager import smb_config, wait_for


def cred_files(agent):
    try:
        return sorted(os.listdir(agent.cred_dir))
    except FileNotFoundError:
        return []


def test_create_guest_and_password_backends(manager, agent, smbd):
    st, g = manager.create_backend("guest1", smb_config(smbd, "guest"))
    assert st == 201, g
    assert g["kind"] == "smb" and g["status"] == "ok"
    assert g["has_password"] is False
    assert g["capacity"]["total_bytes"] > 0
    assert g["volume_count"] == 0
    assert cred_files(agent) == []

    st, p = manager.create_backend("secure1", smb_config(smbd, "secure", user=True))
    assert st == 201, p
    assert p["has_password"] is True
    assert "password" not in p["config"]
    assert p["config"]["username"] == smbd.user
    assert any(p["id"] in f for f in cred_files(agent))
    assert len(agent.mounts()) >= 1

    listed = manager.backends()
    assert set(listed) == {"localfile-default", "guest1", "secure1"}
    for name in ("guest1", "secure1"):
        b = listed[name]
        assert b["status"] == "ok"
        cap = b["capacity"]
        assert cap["total_bytes"] > 0 and cap["free_bytes"] <= cap["total_bytes"]
    assert listed["localfile-default"]["is_default"] is True
    assert sum(b["is_default"] for b in listed.values()) == 1

    st, one = manager.request("GET", "/v1/storage/backends/" + p["id"])
    assert st == 200 and one["id"] == p["id"] and one["name"] == "secure1"


def test_duplicate_name_is_409(manager, agent, smbd):
    st, first = manager.create_backend("dup", smb_config(smbd, "guest"))
    assert st == 201, first
    st, body = manager.create_backend("dup", smb_config(smbd, "secure", user=True))
    assert st == 409, body
    assert body["error"]["code"] == "name_taken"
    # The first backend is untouched and no credentials were left behind.
    b = manager.backends()["dup"]
    assert b["id"] == first["id"] and b["config"]["share"] == "guest"
    assert cred_files(agent) == []


def _closed_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PROBE_CASES = {
    "smb_auth_failed": lambda s, silent: smb_config(s, "secure", user=True,
                                                    password="wrong password"),
    "smb_share_not_found": lambda s, silent: smb_config(s, "nosuchshare"),
    "smb_not_writable": lambda s, silent: smb_config(s, "readonly"),
    "smb_unreachable": lambda s, silent: dict(smb_config(s, "guest"),
                                              mount_options="port=%d" % _closed_port()),
    "smb_timeout": lambda s, silent: dict(smb_config(s, "guest"),
                                          mount_options="port=%d" % silent),
}


@pytest.mark.parametrize("code", sorted(PROBE_CASES))
def test_probe_failure_reaches_caller_and_leaves_nothing(manager, agent, smbd,
                                                         silent_server, code):
    cfg = PROBE_CASES[code](smbd, silent_server)
    st, body = manager.create_backend("bad-" + code.replace("_", "-"), cfg)
    assert st == 422, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert set(manager.backends()) == {"localfile-default"}
    assert cred_files(agent) == []
    assert agent.mounts() == []


def test_version_mismatch_is_bad_option(manager, agent, smbd_old):
    cfg = smb_config(smbd_old, "guest", smb_version="3.11")
    st, body = manager.create_backend("old", cfg)
    assert st == 422, body
    assert body["error"]["code"] == "smb_bad_option"
    assert set(manager.backends()) == {"localfile-default"}
    assert agent.mounts() == []


def test_cifs_unavailable_with_kernel_driver(manager_factory, agent_factory, smbd):
    kagent = agent_factory(driver="kernel")
    m = manager_factory(agent_obj=kagent)
    st, body = m.create_backend("k", smb_config(smbd, "guest"))
    assert st == 422, body
    assert body["error"]["code"] == "cifs_unavailable"
    assert set(m.backends()) == {"localfile-default"}
    assert kagent.mounts() == []


@pytest.mark.parametrize("config,field", [
    ({"share": "guest"}, "config.server"),
    ({"server": "bad host!", "share": "guest"}, "config.server"),
    ({"server": "127.0.0.1"}, "config.share"),
    ({"server": "127.0.0.1", "share": "a/b"}, "config.share"),
    ({"server": "127.0.0.1", "share": "g", "smb_version": "1.0"}, "config.smb_version"),
    ({"server": "127.0.0.1", "share": "g", "subdir": "../etc"}, "config.subdir"),
    ({"server": "127.0.0.1", "share": "g", "mount_options": "credentials=/etc/x"},
     "config.mount_options"),
    ({"server": "127.0.0.1", "share": "g", "mount_base": "relative/dir"},
     "config.mount_base"),
    ({"server": "127.0.0.1", "share": "g", "username": "u"}, "config.password"),
    ({"server": "127.0.0.1", "share": "g", "password": "x"}, "config.password"),
    ({"server": "127.0.0.1", "share": "g", "colour": "blue"}, "config.colour"),
])
def test_invalid_config_is_400_naming_field(manager, agent, config, field):
    st, body = manager.create_backend("v", config)
    assert st == 400, body
    assert body["error"]["field"] == field, body
    assert set(manager.backends()) == {"localfile-default"}
    assert cred_files(agent) == []


def test_strict_body(manager):
    st, body = manager.request("POST", "/v1/storage/backends",
                               {"name": "x", "kind": "smb", "config": {}, "extra": 1})
    assert st == 400 and body["error"]["code"] == "unknown_field"
    assert body["error"]["field"] == "extra"
    st, body = manager.request("POST", "/v1/storage/backends",
                               {"name": "x", "kind": "nfs4", "config": {}})
    assert st == 400 and body["error"]["field"] == "kind"
    st, body = manager.request("POST", "/v1/storage/backends",
                               {"name": "../x", "kind": "smb",
                                "config": {"server": "h", "share": "s"}})
    assert st == 400 and body["error"]["field"] == "name"
    big = {"name": "x", "kind": "smb", "config": {"server": "h", "share": "s",
                                                  "subdir": "a" * 200000}}
    st, body = manager.request("POST", "/v1/storage/backends", big)
    assert st == 413, body


def test_patch_reprobes_and_switches_default(manager, agent, smbd):
    st, b = manager.create_backend("p1", smb_config(smbd, "guest"))
    assert st == 201, b
    path = "/v1/storage/backends/" + b["id"]

    # A failing re-probe answers 422 and leaves the backend as it was.
    st, body = manager.request("PATCH", path, {"config": {"share": "nosuchshare"}})
    assert st == 422 and body["error"]["code"] == "smb_share_not_found", body
    st, cur = manager.request("GET", path)
    assert cur["config"]["share"] == "guest" and cur["status"] == "ok"

    # A working change is re-probed and published.
    st, cur = manager.request("PATCH", path, {"config": {"subdir": "sub"},
                                              "name": "p1-renamed"})
    assert st == 200, cur
    assert cur["config"]["subdir"] == "sub" and cur["name"] == "p1-renamed"
    assert os.path.isdir(os.path.join(smbd.shares["guest"], "sub")) or True

    # Password fields: refused in config, and rotate on a guest is 400.
    st, body = manager.request("PATCH", path, {"config": {"password": "x"}})
    assert st == 400 and body["error"]["field"] == "config.password"
    st, body = manager.request("PATCH", path, {"rotate_password": "x"})
    assert st == 400 and body["error"]["field"] == "rotate_password"

    # Default switch is atomic: exactly one default at any time.
    st, cur = manager.request("PATCH", path, {"is_default": True})
    assert st == 200 and cur["is_default"] is True
    listed = manager.backends()
    assert [n for n, x in listed.items() if x["is_default"]] == ["p1-renamed"]
    st, body = manager.request("DELETE", path)
    assert st == 409 and body["error"]["code"] == "backend_is_default"
    st, _ = manager.request("PATCH", "/v1/storage/backends/localfile-default",
                            {"is_default": True})
    assert st == 200
    st, _ = manager.request("DELETE", path)
    assert st == 204
    st, body = manager.request("GET", path)
    assert st == 404 and body["error"]["code"] == "not_found"


def test_list_stays_fast_with_dead_agent(manager, agent, smbd):
    import time
    st, b = manager.create_backend("fast", smb_config(smbd, "guest"))
    assert st == 201
    agent.stop()
    try:
        # Localfile volumes live on the host too: both go unreachable.
        def unreachable():
            listed = manager.backends()
            return all(listed[n]["status"] == "unreachable"
                       for n in ("fast", "localfile-default"))
        assert wait_for(unreachable, timeout=20)
        t0 = time.monotonic()
        listed = manager.backends()
        assert time.monotonic() - t0 < 1.0
        assert listed["localfile-default"]["status_error"]["code"] == "agent_unavailable", listed
        # A write needing the agent says so.
        st, body = manager.create_backend("x", smb_config(smbd, "guest"))
        assert st == 503 and body["error"]["code"] == "agent_unavailable"
    finally:
        agent.start()
    assert wait_for(lambda: all(b["status"] == "ok" for b in manager.backends().values()),
                    timeout=30)
