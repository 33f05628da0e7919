"""nqrust-agent against a real smbd through the FUSE driver: mounts,
credentials, every probe error code, versions, reuse and adoption."""

import concurrent.futures
import os
import stat

import pytest

from fixtures_agent import Agent, mounts_under, new_id


def smb_body(smbd, share="guest", **kw):
    body = {"backend_id": kw.pop("backend_id", new_id()), "server": smbd.host,
            "share": share, "mount_options": "port=%d" % smbd.port}
    body.update(kw)
    return body


def test_guest_mount_probe_and_capacity(agent, smbd):
    body = smb_body(smbd)
    st, r = agent.mount(**body)
    assert st == 200, r
    assert r["driver"] == "fuse"
    assert r["backend_id"] == body["backend_id"]
    assert r["mount_point"] == os.path.join(agent.mount_base, "127.0.0.1:guest")
    assert r["volume_dir"] == r["mount_point"]
    assert agent.mounts() == [r["mount_point"]]
    # The probe file was deleted again.
    assert not [n for n in os.listdir(smbd.shares["guest"]) if n.startswith(".nqrust-probe")]
    st, cap = agent.request("GET", "/v1/storage/smb/mounts/%s/capacity" % body["backend_id"])
    assert st == 200, cap
    vfs = os.statvfs(smbd.shares["guest"])
    assert cap["total_bytes"] > 0 and cap["free_bytes"] > 0
    # Same file system as the share's backing directory, give or take usage drift.
    assert abs(cap["total_bytes"] - vfs.f_blocks * vfs.f_frsize) < 0.05 * cap["total_bytes"]
    st, lst = agent.request("GET", "/v1/storage/smb/mounts")
    assert st == 200
    assert lst == [{"mount_point": r["mount_point"], "source": "//127.0.0.1/guest",
                    "driver": "fuse", "backends": [body["backend_id"]],
                    "health": "ok", "health_message": ""}]
    # Unmount drops the reference; at zero the share is unmounted.
    st, _ = agent.request("DELETE", "/v1/storage/smb/mounts/" + body["backend_id"])
    assert st == 204
    assert agent.mounts() == []
    st, _ = agent.request("DELETE", "/v1/storage/smb/mounts/" + body["backend_id"])
    assert st == 204  # idempotent


def test_password_mount_with_hostile_password(agent, smbd):
    bid = new_id()
    st, r = agent.put_creds(bid, smbd.user, smbd.password)
    assert st == 204, r
    path = os.path.join(agent.cred_dir, bid + ".cred")
    s = os.stat(path)
    assert stat.S_IMODE(s.st_mode) == 0o600 and s.st_uid == 0
    assert stat.S_IMODE(os.stat(agent.cred_dir).st_mode) == 0o700
    with open(path) as f:
        assert f.read() == "username=%s\npassword=%s\n" % (smbd.user, smbd.password)
    st, r = agent.mount(**smb_body(smbd, "secure", backend_id=bid, username=smbd.user,
                                   subdir="vms/a"))
    assert st == 200, r
    assert r["volume_dir"] == r["mount_point"] + "/vms/a"
    assert os.path.isdir(os.path.join(smbd.shares["secure"], "vms", "a"))
    # Replacing credentials is atomic and leaves no temp file behind.
    st, _ = agent.put_creds(bid, smbd.user, smbd.password, domain="WORKGROUP")
    assert st == 204
    assert sorted(os.listdir(agent.cred_dir)) == [bid + ".cred"]
    st, _ = agent.request("DELETE", "/v1/storage/smb/credentials/" + bid)
    assert st == 204 and os.listdir(agent.cred_dir) == []
    st, _ = agent.request("DELETE", "/v1/storage/smb/credentials/" + bid)
    assert st == 204


@pytest.mark.parametrize("vers", ["2.1", "3.0", "3.11", "3", "default"])
def test_versions_mount(agent, smbd, vers):
    st, r = agent.mount(**smb_body(smbd, smb_version=vers))
    assert st == 200, r


def assert_nothing_left(agent):
    assert agent.mounts() == []
    base = agent.mount_base
    assert not os.path.exists(base) or os.listdir(base) == [], os.listdir(base)


def test_wrong_password(agent, smbd):
    bid = new_id()
    assert agent.put_creds(bid, smbd.user, "wrong" + smbd.password)[0] == 204
    st, r = agent.mount(**smb_body(smbd, "secure", backend_id=bid, username=smbd.user))
    assert st == 422 and r["error"]["code"] == "smb_auth_failed", r
    assert "password" in r["error"]["message"]
    assert_nothing_left(agent)


def test_guest_on_user_share_is_auth_failure(agent, smbd):
    st, r = agent.mount(**smb_body(smbd, "secure"))
    assert st == 422 and r["error"]["code"] == "smb_auth_failed", r


def test_wrong_share(agent, smbd):
    st, r = agent.mount(**smb_body(smbd, "nosuchshare"))
    assert st == 422 and r["error"]["code"] == "smb_share_not_found", r
    assert "nosuchshare" in r["error"]["message"]
    assert_nothing_left(agent)


def test_closed_port(agent, smbd):
    from smbd import free_port
    body = smb_body(smbd)
    body["mount_options"] = "port=%d" % free_port()
    st, r = agent.mount(**body)
    assert st == 422 and r["error"]["code"] == "smb_unreachable", r
    assert_nothing_left(agent)


def test_unresolvable_host(agent, smbd):
    body = smb_body(smbd)
    body["server"] = "no-such-host.invalid"
    st, r = agent.mount(**body)
    assert st == 422 and r["error"]["code"] == "smb_unreachable", r


def test_silent_server_times_out_within_deadline(agent_factory, smbd, silent_server):
    import time
    a = agent_factory(probe_timeout=3)
    body = smb_body(smbd)
    body["mount_options"] = "port=%d" % silent_server
    t0 = time.monotonic()
    st, r = a.mount(**body)
    took = time.monotonic() - t0
    assert st == 422 and r["error"]["code"] == "smb_timeout", r
    assert took < 3 + 10, took  # the configured deadline, plus process slack
    assert_nothing_left(a)


def test_read_only_share(agent, smbd):
    st, r = agent.mount(**smb_body(smbd, "readonly"))
    assert st == 422 and r["error"]["code"] == "smb_not_writable", r
    assert_nothing_left(agent)


def test_deleted_cred_file(agent, smbd):
    bid = new_id()
    assert agent.put_creds(bid, smbd.user, smbd.password)[0] == 204
    os.unlink(os.path.join(agent.cred_dir, bid + ".cred"))
    st, r = agent.mount(**smb_body(smbd, "secure", backend_id=bid, username=smbd.user))
    assert st == 422 and r["error"]["code"] == "smb_cred_missing", r
    assert_nothing_left(agent)


def test_impossible_version_pin(agent, smbd_old):
    st, r = agent.mount(**smb_body(smbd_old, smb_version="3.11"))
    assert st == 422 and r["error"]["code"] == "smb_bad_option", r
    assert_nothing_left(agent)
    # The same server mounts with a version it supports.
    st, r = agent.mount(**smb_body(smbd_old, smb_version="2.1"))
    assert st == 200, r


def test_twenty_concurrent_backends_share_one_mount(agent, smbd):
    ids = [new_id() for _ in range(20)]
    with concurrent.futures.ThreadPoolExecutor(20) as ex:
        res = list(ex.map(lambda b: agent.mount(**smb_body(smbd, backend_id=b)), ids))
    assert all(st == 200 for st, _ in res), res
    assert len({r["mount_point"] for _, r in res}) == 1
    assert len(agent.mounts()) == 1
    st, lst = agent.request("GET", "/v1/storage/smb/mounts")
    assert sorted(lst[0]["backends"]) == sorted(ids)
    # Dropping 19 references keeps the mount; the last one unmounts.
    for b in ids[:-1]:
        assert agent.request("DELETE", "/v1/storage/smb/mounts/" + b)[0] == 204
    assert len(agent.mounts()) == 1
    assert agent.request("DELETE", "/v1/storage/smb/mounts/" + ids[-1])[0] == 204
    assert agent.mounts() == []


def test_other_identity_gets_its_own_mount_point(agent, smbd):
    bid = new_id()
    st, g = agent.mount(**smb_body(smbd))
    assert st == 200
    st, v = agent.mount(**smb_body(smbd, smb_version="3.0"))
    assert st == 200
    assert g["mount_point"] != v["mount_point"]
    assert v["mount_point"] == g["mount_point"] + "~2"
    assert agent.put_creds(bid, smbd.user, smbd.password)[0] == 204
    st, p = agent.mount(**smb_body(smbd, "secure", backend_id=bid, username=smbd.user))
    assert st == 200
    assert len(agent.mounts()) == 3


def test_restart_adopts_existing_mount(agent, smbd):
    ids = [new_id(), new_id()]
    for b in ids:
        assert agent.mount(**smb_body(smbd, backend_id=b))[0] == 200
    before = agent.mounts()
    assert len(before) == 1
    agent.restart()
    assert agent.mounts() == before  # not mounted again
    assert "adopted existing mount" in agent.log()
    st, lst = agent.request("GET", "/v1/storage/smb/mounts")
    assert st == 200 and sorted(lst[0]["backends"]) == sorted(ids)
    st, cap = agent.request("GET", "/v1/storage/smb/mounts/%s/capacity" % ids[0])
    assert st == 200 and cap["total_bytes"] > 0
    for b in ids:
        assert agent.request("DELETE", "/v1/storage/smb/mounts/" + b)[0] == 204
    assert agent.mounts() == []


def test_share_unmounted_behind_our_back_is_mounted_again(agent, smbd):
    bid = new_id()
    st, r = agent.mount(**smb_body(smbd, backend_id=bid))
    assert st == 200
    agent.stop()
    import subprocess
    subprocess.run(["/bin/umount", r["mount_point"]], check=True)
    agent.start()
    assert agent.mounts() == []
    st, cap = agent.request("GET", "/v1/storage/smb/mounts/%s/capacity" % bid)
    assert st == 200, cap
    assert agent.mounts() == [r["mount_point"]]


def test_unknown_backend_capacity_is_404(agent):
    st, r = agent.request("GET", "/v1/storage/smb/mounts/%s/capacity" % new_id())
    assert st == 404 and r["error"]["code"] == "not_found"


def test_wrong_password_never_rides_on_an_existing_mount(agent, smbd):
    good, bad, same = new_id(), new_id(), new_id()
    assert agent.put_creds(good, smbd.user, smbd.password)[0] == 204
    st, g = agent.mount(**smb_body(smbd, "secure", backend_id=good, username=smbd.user))
    assert st == 200, g
    # Same server, share, user and options, but a wrong password: the agent
    # must try its own mount (and fail) instead of reusing the good one.
    assert agent.put_creds(bad, smbd.user, "not-" + smbd.password)[0] == 204
    st, r = agent.mount(**smb_body(smbd, "secure", backend_id=bad, username=smbd.user))
    assert st == 422 and r["error"]["code"] == "smb_auth_failed", r
    # The right password for the same user shares the mount.
    assert agent.put_creds(same, smbd.user, smbd.password)[0] == 204
    st, r = agent.mount(**smb_body(smbd, "secure", backend_id=same, username=smbd.user))
    assert st == 200 and r["mount_point"] == g["mount_point"]
    assert len(agent.mounts()) == 1


def test_rotation_keeps_the_live_mount(agent, smbd):
    bid = new_id()
    assert agent.put_creds(bid, smbd.user, smbd.password)[0] == 204
    st, m = agent.mount(**smb_body(smbd, "secure", backend_id=bid, username=smbd.user))
    assert st == 200
    cred = os.path.join(agent.cred_dir, bid + ".cred")
    with open(cred, "rb") as f:
        before = f.read()
    # Credentials the server refuses are proved wrong before they replace
    # anything (issue 10): 422, the old file and the live mount unchanged.
    st, r = agent.put_creds(bid, smbd.user, "rotated-" + smbd.password)
    assert st == 422 and r["error"]["code"] == "smb_auth_failed", r
    with open(cred, "rb") as f:
        assert f.read() == before
    # Rotating to credentials the server accepts does not remount: the
    # backend keeps using its live mount for volumes.
    assert agent.put_creds(bid, smbd.user, smbd.password)[0] == 204
    st, r = agent.request("POST", "/v1/storage/smb/volumes",
                          {"backend_id": bid, "volume_id": new_id(), "size_bytes": 1 << 20})
    assert st == 201, r
    assert agent.mounts() == [m["mount_point"]]


def test_stale_password_cannot_reuse_a_live_mount(agent):
    """The server's password changes while the share is mounted: a backend
    presenting the old password must be refused even though a live mount
    made with that password exists (reuse re-authenticates)."""
    import subprocess
    from smbd import SMBPASSWD, Smbd

    with Smbd() as s:
        first, stale, fresh = new_id(), new_id(), new_id()
        assert agent.put_creds(first, s.user, s.password)[0] == 204
        st, m = agent.mount(**smb_body(s, "secure", backend_id=first, username=s.user))
        assert st == 200, m
        new_pw = "changed " + s.password
        r = subprocess.run([SMBPASSWD, "-c", s.conf, "-s", s.user],
                           input=((new_pw + "\n") * 2).encode(), capture_output=True)
        assert r.returncode == 0, r.stderr
        assert agent.put_creds(stale, s.user, s.password)[0] == 204
        st, r = agent.mount(**smb_body(s, "secure", backend_id=stale, username=s.user))
        assert st == 422 and r["error"]["code"] == "smb_auth_failed", r
        # The new password mounts, and the first backend's live mount
        # keeps serving it.
        assert agent.put_creds(fresh, s.user, new_pw)[0] == 204
        st, r = agent.mount(**smb_body(s, "secure", backend_id=fresh, username=s.user))
        assert st == 200, r
        st, cap = agent.request("GET", "/v1/storage/smb/mounts/%s/capacity" % first)
        assert st == 200, cap
        for b in (first, fresh):
            assert agent.request("DELETE", "/v1/storage/smb/mounts/" + b)[0] == 204
