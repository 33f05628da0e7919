"""Rotate, remove and restart, end to end: manager + agent + real smbd, on
SQLite and PostgreSQL."""

import uuid
import os
import subprocess

from fixtures_manager import smb_config, wait_for
from smbd import SMBPASSWD, Smbd


def cred_files(agent):
    try:
        return sorted(os.listdir(agent.cred_dir))
    except FileNotFoundError:
        return []


def set_smb_password(s, new):
    r = subprocess.run([SMBPASSWD, "-c", s.conf, "-s", s.user],
                       input=((new + "\n") * 2).encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=False)
    assert r.returncode == 0, r.stderr
    s.password = new


def test_rotate_keeps_live_mount_and_new_mounts_use_new_password(manager, agent):
    s = Smbd().start()
    try:
        old = s.password
        st, b = manager.create_backend("rot", smb_config(s, "secure", user=True))
        assert st == 201, b
        bid = b["id"]
        st, vol = manager.request("POST", "/v1/volumes",
                                  {"backend_id": bid, "size_bytes": 1 << 20})
        assert st == 201, vol

        new = "N3w p,a=s's\"w$ rd 2"
        set_smb_password(s, new)
        st, body = manager.request("PATCH", "/v1/storage/backends/" + bid,
                                   {"rotate_password": new})
        assert st == 200, body
        assert body["has_password"] is True and "password" not in body["config"]

        # The existing mount kept serving: a second volume lands on it, and
        # the status check (statvfs through the live mount) stays ok.
        st, vol2 = manager.request("POST", "/v1/volumes",
                                   {"backend_id": bid, "size_bytes": 1 << 20})
        assert st == 201, vol2
        assert os.path.exists(os.path.join(s.shares["secure"],
                                           os.path.basename(vol2["path"])))
        assert manager.backends()["rot"]["status"] == "ok"

        # A fresh mount (different options, so not shared) with the old
        # password fails; with the new one it works.
        fresh = "port=%d,noatime" % s.port
        st, body = manager.create_backend(
            "rot-old", smb_config(s, "secure", user=True, password=old,
                                  mount_options=fresh))
        assert st == 422 and body["error"]["code"] == "smb_auth_failed", body
        st, body = manager.create_backend(
            "rot-new", smb_config(s, "secure", user=True, password=new,
                                  mount_options=fresh))
        assert st == 201, body
        # Same options as the live mount: sharing it re-authenticates, so
        # the old password is refused there too.
        st, body = manager.create_backend(
            "rot-old-shared", smb_config(s, "secure", user=True, password=old))
        assert st == 422 and body["error"]["code"] == "smb_auth_failed", body

        # The rotated backend's own credentials mount afresh too: a config
        # change forces a new mount with the stored (new) password.
        st, body = manager.request("PATCH", "/v1/storage/backends/" + bid,
                                   {"config": {"mount_options": "port=%d,nosharesock"
                                               % s.port}})
        assert st == 409 and body["error"]["code"] == "backend_in_use", body
        for v in (vol, vol2):
            assert manager.request("DELETE", "/v1/volumes/" + v["id"])[0] == 204
        st, body = manager.request("PATCH", "/v1/storage/backends/" + bid,
                                   {"config": {"mount_options": "port=%d,nosharesock"
                                               % s.port}})
        assert st == 200, body

        # A blank rotate leaves the password alone.
        st, body = manager.request("PATCH", "/v1/storage/backends/" + bid,
                                   {"rotate_password": ""})
        assert st == 200 and body["has_password"] is True
    finally:
        s.stop()


def test_remove_refused_while_volume_exists(manager, agent, smbd):
    st, b = manager.create_backend("rm", smb_config(smbd, "secure", user=True))
    assert st == 201, b
    bid = b["id"]
    assert any(bid in f for f in cred_files(agent))
    st, vol = manager.request("POST", "/v1/volumes", {"backend_id": bid,
                                                      "size_bytes": 4 << 20})
    assert st == 201, vol
    assert vol["backend_id"] == bid and vol["size_bytes"] == 4 << 20
    # A file the manager does not manage, written through the agent.
    other = str(uuid.uuid4())
    st, ov = agent.request("POST", "/v1/storage/smb/volumes",
                           {"backend_id": bid, "volume_id": other,
                            "size_bytes": 1 << 20})
    assert st == 201, ov
    other_file = os.path.join(smbd.shares["secure"], os.path.basename(ov["path"]))
    assert os.path.exists(other_file)
    assert manager.backends()["rm"]["volume_count"] == 1

    st, body = manager.request("DELETE", "/v1/storage/backends/" + bid)
    assert st == 409, body
    assert body["error"]["code"] == "backend_in_use"
    assert body["error"]["volumes"] == [vol["id"]]
    assert manager.request("GET", "/v1/storage/backends/" + bid)[0] == 200

    assert manager.request("DELETE", "/v1/volumes/" + vol["id"])[0] == 204
    st, vols = manager.request("GET", "/v1/volumes")
    assert st == 200 and vols == []
    st, body = manager.request("DELETE", "/v1/storage/backends/" + bid)
    assert st == 204, body
    assert "rm" not in manager.backends()
    assert manager.request("GET", "/v1/storage/backends/" + bid)[0] == 404
    assert not any(bid in f for f in cred_files(agent))
    assert agent.mounts() == []
    assert os.path.exists(other_file)  # files on the share are left alone


def test_restart_rebuilds_registry_and_tracks_server(manager, agent):
    s = Smbd().start()
    try:
        st, b = manager.create_backend("rs", smb_config(s, "guest"))
        assert st == 201, b
        st, p = manager.create_backend("rs-pw", smb_config(s, "secure", user=True))
        assert st == 201, p
        st, _ = manager.request("PATCH", "/v1/storage/backends/" + b["id"],
                                {"is_default": True})
        assert st == 200
        before = manager.backends()

        manager.restart()
        after = manager.backends()
        assert set(after) == set(before)
        for name in before:
            for k in ("id", "kind", "config", "has_password", "is_default"):
                assert after[name][k] == before[name][k], (name, k)
        assert wait_for(lambda: manager.backends()["rs"]["status"] == "ok", 20)

        # Server down: the row turns unreachable, by itself.
        s._stop_proc()
        assert wait_for(lambda: manager.backends()["rs"]["status"] == "unreachable", 60)
        # Server back on the same port: ok again, without an operator.
        s._write_conf()
        s._spawn_and_wait()
        assert wait_for(lambda: manager.backends()["rs"]["status"] == "ok", 60)
        assert wait_for(lambda: manager.backends()["rs-pw"]["status"] == "ok", 60)
    finally:
        s.stop()


def test_agent_restart_reattaches(manager, agent, smbd):
    st, b = manager.create_backend("ra", smb_config(smbd, "guest"))
    assert st == 201, b
    agent.restart()
    assert wait_for(lambda: manager.backends()["ra"]["status"] == "ok", 30)
    st, vol = manager.request("POST", "/v1/volumes", {"backend_id": b["id"],
                                                      "size_bytes": 1 << 20})
    assert st == 201, vol
