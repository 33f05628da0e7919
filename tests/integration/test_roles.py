"""User roles: administrators manage users; a viewer reads everything the
UI needs and is refused (403 forbidden) on every change, in one place."""

import json

import pytest

from fixtures_manager import ADMIN_PASSWORD

VIEWER_PW = "viewer-pass-0123"

# One request of every kind of change; ids need not exist: the role check
# comes before the handler.
MUTATIONS = [
    ("POST", "/v1/storage/backends", {"name": "x", "kind": "localfile", "config": {}}),
    ("PATCH", "/v1/storage/backends/localfile-default", {"config": {}}),
    ("DELETE", "/v1/storage/backends/localfile-default", None),
    ("POST", "/v1/volumes", {"backend_id": "localfile-default", "size_bytes": 4096}),
    ("POST", "/v1/vms", {"name": "v", "vcpus": 1, "memory_mib": 64,
                         "image_id": "rootfs.ext4"}),
    ("POST", "/v1/vms/v/start", {}),
    ("POST", "/v1/vms/v/stop", {}),
    ("POST", "/v1/vms/v/shutdown", {}),
    ("PATCH", "/v1/vms/v", {"vcpus": 2}),
    ("DELETE", "/v1/vms/v", None),
    ("POST", "/v1/hosts", {"name": "h", "agent_url": "https://127.0.0.1:1",
                           "token": "t"}),
    ("DELETE", "/v1/hosts/local", None),
    ("POST", "/v1/users", {"username": "evil", "password": "evil-pass-123",
                           "role": "admin"}),
    ("DELETE", "/v1/users/admin", None),
]


def test_viewer_reads_but_cannot_change(manager):
    st, user = manager.request("POST", "/v1/users", {
        "username": "alice", "password": VIEWER_PW, "role": "viewer"})
    assert st == 201, user
    assert user["username"] == "alice" and user["role"] == "viewer"
    assert not user["builtin"] and VIEWER_PW not in json.dumps(user)
    # Bad input names the field; a name is taken once.
    for body, field in (({"username": "b", "password": VIEWER_PW, "role": "root"}, "role"),
                        ({"username": "b", "password": "short"}, "password"),
                        ({"username": "-b", "password": VIEWER_PW}, "username")):
        st, err = manager.request("POST", "/v1/users", body)
        assert st == 400 and err["error"]["field"] == field, (body, err)
    st, err = manager.request("POST", "/v1/users", {"username": "alice",
                                                    "password": VIEWER_PW})
    assert st == 409 and err["error"]["field"] == "username"
    st, users = manager.request("GET", "/v1/users")
    assert st == 200
    assert {u["username"]: (u["role"], u["builtin"]) for u in users} == {
        "admin": ("admin", True), "alice": ("viewer", False)}
    st, me = manager.request("GET", "/v1/auth/whoami")
    assert st == 200 and me == {"username": "admin", "role": "admin"}

    st, body, _ = manager.raw("POST", "/v1/auth/login",
                              {"username": "alice", "password": VIEWER_PW})
    assert st == 200 and body["role"] == "viewer"
    bearer = {"Authorization": "Bearer " + body["token"]}
    st, me, _ = manager.raw("GET", "/v1/auth/whoami", headers=bearer)
    assert st == 200 and me == {"username": "alice", "role": "viewer"}
    for path in ("/v1/storage/backends", "/v1/vms", "/v1/hosts", "/v1/volumes",
                 "/v1/images", "/v1/events", "/v1/storage/backends/localfile-default"):
        st, reply, _ = manager.raw("GET", path, headers=bearer)
        assert st == 200, (path, reply)
    st, reply, _ = manager.raw("GET", "/v1/users", headers=bearer)
    assert st == 403 and reply["error"]["code"] == "forbidden"
    for method, path, req in MUTATIONS:
        st, reply, _ = manager.raw(method, path, req, headers=bearer)
        assert st == 403, (method, path, st, reply)
        assert reply["error"]["code"] == "forbidden"
    # Nothing changed: still one user besides the admin, the default backend.
    st, users = manager.request("GET", "/v1/users")
    assert sorted(u["username"] for u in users) == ["admin", "alice"]
    assert "localfile-default" in {b["id"] for b in manager.backends().values()}

    # The UI's cookie session with a valid CSRF token: still forbidden.
    st, body2, hdrs = manager.raw("POST", "/v1/auth/login",
                                  {"username": "alice", "password": VIEWER_PW})
    cookie = {"Cookie": hdrs["set-cookie"].split(";")[0],
              "X-CSRF-Token": body2["csrf_token"]}
    st, reply, _ = manager.raw("POST", "/v1/volumes", MUTATIONS[3][2], headers=cookie)
    assert st == 403 and reply["error"]["code"] == "forbidden"
    assert manager.raw("POST", "/v1/auth/logout", headers=cookie)[0] == 204

    # The first admin stays; removing the viewer ends its sessions.
    st, err = manager.request("DELETE", "/v1/users/admin")
    assert st == 409 and err["error"]["code"] == "user_builtin"
    assert manager.request("DELETE", "/v1/users/alice")[0] == 204
    assert manager.request("DELETE", "/v1/users/alice")[0] == 404
    assert manager.raw("GET", "/v1/vms", headers=bearer)[0] == 401
    assert VIEWER_PW.encode() not in manager.db_bytes()
    assert ADMIN_PASSWORD.encode() not in manager.db_bytes()


@pytest.mark.parametrize("engine", ["sqlite"])
def test_role_survives_restart_and_new_admin_can_manage(manager):
    st, _ = manager.request("POST", "/v1/users", {
        "username": "bob", "password": VIEWER_PW, "role": "admin"})
    assert st == 201
    manager.restart()
    body = manager.login("bob", VIEWER_PW)
    assert body["role"] == "admin"
    st, u = manager.request("POST", "/v1/users", {"username": "carol",
                                                  "password": VIEWER_PW})
    assert st == 201 and u["role"] == "viewer"  # the default role


@pytest.mark.parametrize("engine", ["sqlite"])
def test_cli_users(manager):
    from test_cli import Cli

    cli = Cli(manager)
    rc, out, err = cli.run("login", "--username", "admin", "--password-stdin",
                           stdin=ADMIN_PASSWORD + "\n")
    assert rc == 0 and "role admin" in out, (out, err)
    u = cli.json("user", "add", "dave", "--role", "viewer", "--password-stdin",
                 stdin=VIEWER_PW + "\n")
    assert u["username"] == "dave" and u["role"] == "viewer"
    rc, out, err = cli.run("user", "list")
    assert rc == 0 and "dave" in out and "viewer" in out and VIEWER_PW not in out
    rc, out, err = cli.run("--json", "user", "remove", "admin")
    assert rc == 1 and json.loads(out)["error"]["code"] == "user_builtin"
    viewer = Cli(manager)
    rc, out, err = viewer.run("--json", "login", "--username", "dave",
                              "--password-stdin", stdin=VIEWER_PW + "\n")
    assert rc == 0 and json.loads(out)["role"] == "viewer"
    rc, out, err = viewer.run("--json", "backend", "delete", "localfile-default")
    assert rc == 1 and json.loads(out)["error"]["code"] == "forbidden", out
    assert viewer.json("backend", "list")
    rc, out, err = cli.run("user", "remove", "dave")
    assert rc == 0, err
    assert viewer.run("backend", "list")[0] == 1
