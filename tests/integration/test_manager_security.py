"""Authentication, CSRF, rate limiting, and the password appearing nowhere:
logs, database files / dumps, API replies, /proc/*/cmdline."""

import json
import os

import pytest

from fixtures_manager import ADMIN_PASSWORD, smb_config

ROUTES = [
    ("GET", "/v1/storage/backends"),
    ("POST", "/v1/storage/backends"),
    ("GET", "/v1/storage/backends/localfile-default"),
    ("PATCH", "/v1/storage/backends/localfile-default"),
    ("DELETE", "/v1/storage/backends/localfile-default"),
    ("GET", "/v1/volumes"),
    ("POST", "/v1/volumes"),
    ("GET", "/v1/volumes/0b7c8a3e-0000-4000-8000-000000000001"),
    ("DELETE", "/v1/volumes/0b7c8a3e-0000-4000-8000-000000000001"),
    ("POST", "/v1/auth/logout"),
]


def test_every_v1_route_needs_auth(manager):
    for method, path in ROUTES:
        body = {} if method in ("POST", "PATCH") else None
        for hdrs in ({}, {"Authorization": "Bearer " + "0" * 64},
                     {"Authorization": "Bearer nonsense"},
                     {"Cookie": "nqrust_session=" + "f" * 64}):
            st, reply, _ = manager.raw(method, path, body, headers=hdrs)
            assert st == 401, (method, path, hdrs, reply)
            assert reply["error"]["code"] == "unauthorized"
    assert manager.raw("GET", "/healthz")[0] == 200
    # Logout really ends the token.
    manager.login()
    tok = manager.token
    assert manager.request("GET", "/v1/volumes")[0] == 200
    assert manager.request("POST", "/v1/auth/logout")[0] == 204
    st, _, _ = manager.raw("GET", "/v1/volumes", headers={"Authorization": "Bearer " + tok})
    assert st == 401


def test_cookie_session_needs_csrf_for_writes(manager):
    st, body, hdrs = manager.raw("POST", "/v1/auth/login",
                                 {"username": "admin", "password": ADMIN_PASSWORD})
    assert st == 200
    cookie = hdrs["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    session = cookie.split(";")[0]
    assert session == "nqrust_session=" + body["token"]
    c = {"Cookie": session}
    assert manager.raw("GET", "/v1/storage/backends", headers=c)[0] == 200
    vol = {"backend_id": "localfile-default", "size_bytes": 4096}
    st, reply, _ = manager.raw("POST", "/v1/volumes", vol, headers=c)
    assert st == 403 and reply["error"]["code"] == "csrf_required"
    st, reply, _ = manager.raw("POST", "/v1/volumes", vol,
                               headers=dict(c, **{"X-CSRF-Token": "0" * 64}))
    assert st == 403
    st, reply, _ = manager.raw("POST", "/v1/volumes", vol,
                               headers=dict(c, **{"X-CSRF-Token": body["csrf_token"]}))
    assert st == 201, reply
    # A bearer token needs no CSRF header.
    st, _ = manager.request("DELETE", "/v1/volumes/" + reply["id"])
    assert st == 204


def test_failed_logins_are_rate_limited(manager_factory):
    m = manager_factory(extra_args=["--login-max-failures", "3", "--login-lockout", "60"])
    for _ in range(3):
        st, body, _ = m.raw("POST", "/v1/auth/login",
                            {"username": "admin", "password": "wrong"})
        assert st == 401 and body["error"]["code"] == "unauthorized"
    st, body, hdrs = m.raw("POST", "/v1/auth/login",
                           {"username": "admin", "password": ADMIN_PASSWORD})
    assert st == 429, body
    assert body["error"]["code"] == "too_many_requests"
    assert int(hdrs["retry-after"]) > 0
    # Unknown users and bad bodies are refused the same way, never 500.
    st, body, _ = m.raw("POST", "/v1/auth/login", {"username": "nobody", "password": "x"})
    assert st in (401, 429)
    st, body, _ = m.raw("POST", "/v1/auth/login", {"username": "admin", "pw": "x"})
    assert st == 400 and body["error"]["field"] == "pw"


def test_generated_admin_password_printed_once(manager_factory):
    m = manager_factory(admin_password=None)
    with open(m.stdout_path) as f:
        out = f.read()
    assert out.count("generated password") == 1
    pw = out.strip().rsplit(" ", 1)[1]
    assert pw not in m.log()
    m.login(password=pw)
    m.restart()
    with open(m.stdout_path) as f:
        assert f.read().count("generated password") == 1  # not again
    m.login(password=pw)


def _forms(secret):
    return {secret.encode(), json.dumps(secret)[1:-1].encode()}


def _cmdlines():
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    out.append(f.read())
            except OSError:
                pass
    return out


def test_password_appears_nowhere(manager, agent, smbd):
    st, b = manager.create_backend("sec", smb_config(smbd, "secure", user=True))
    assert st == 201, b
    # Different options: a fresh mount, so the wrong password is really tried.
    st, body = manager.create_backend("sec-bad", smb_config(
        smbd, "secure", user=True, password="bad " + smbd.password,
        mount_options="port=%d,noatime" % smbd.port))
    assert st == 422
    st, body = manager.request("PATCH", "/v1/storage/backends/" + b["id"],
                               {"rotate_password": smbd.password})
    assert st == 200, body
    # A refused body that carried a password (unknown key) is not echoed.
    st, body = manager.request("POST", "/v1/storage/backends",
                               {"name": "x", "kind": "smb", "secret": smbd.password,
                                "config": {"server": "h", "share": "s"}})
    assert st == 400
    manager.backends()
    manager.stop()  # flush everything to disk

    secrets = _forms(smbd.password) | _forms(ADMIN_PASSWORD)
    with open(manager.log_path, "rb") as f:
        mlog = f.read()
    with open(agent.log_path, "rb") as f:
        alog = f.read()
    db = manager.db_bytes()
    assert db  # the check below must be able to fail
    for s in secrets:
        assert s not in mlog, "password in the manager log"
        assert s not in alog, "password in the agent log"
        assert s not in db, "password in the database"
        for reply in manager.replies:
            assert s not in reply, "password in an API reply"
        for cmd in _cmdlines():
            assert s not in cmd, "password in a command line"
