"""Hostile input is refused with 400 before anything is mounted or written;
secrets never reach a log, an argv or a reply; the listeners check peers."""

import glob
import os
import stat
import subprocess

import pytest

from fixtures_agent import Agent, new_id


def snapshot(agent):
    """Every path under the agent's dirs (except its log) plus mounts."""
    out = []
    for d in (agent.cred_dir, agent.mount_root, agent.state_dir, agent.image_dir):
        for root, dirs, files in os.walk(d):
            out += [os.path.join(root, n) for n in dirs + files]
    return sorted(out), agent.mounts()


def base(smbd, **kw):
    b = {"backend_id": new_id(), "server": smbd.host, "share": "guest",
         "mount_options": "port=%d" % smbd.port}
    b.update(kw)
    return b


HOSTILE_MOUNTS = [
    ("mount_base", {"mount_base": "/etc"}),
    ("mount_base", {"mount_base": "/tmp/elsewhere"}),
    ("mount_base", {"mount_base": "RELATIVE"}),
    ("mount_base", {"mount_base": "@ROOT@/../../etc"}),
    ("subdir", {"subdir": "../escape"}),
    ("subdir", {"subdir": "a/../../b"}),
    ("subdir", {"subdir": "/abs"}),
    ("subdir", {"subdir": "a\\b"}),
    ("subdir", {"subdir": "a\nb"}),
    ("mount_options", {"mount_options": "credentials=/etc/shadow"}),
    ("mount_options", {"mount_options": "port=445,password=x"}),
    ("mount_options", {"mount_options": "username=root"}),
    ("mount_options", {"mount_options": "port=445,vers=1.0"}),
    ("mount_options", {"mount_options": "ro,a=b,c"}),
    ("mount_options", {"mount_options": "port=445\nuser=x"}),
    ("mount_options", {"mount_options": "uid=1000"}),
    ("mount_options", {"mount_options": "port=99999"}),
    ("server", {"server": "host;reboot"}),
    ("server", {"server": "$(touch /tmp/pwned)"}),
    ("server", {"server": "`id`"}),
    ("server", {"server": "-oremount"}),
    ("server", {"server": "a b"}),
    ("server", {"server": "::1"}),
    ("share", {"share": "a/b"}),
    ("share", {"share": "x,password=y"}),
    ("share", {"share": ""}),
    ("smb_version", {"smb_version": "1.0"}),
    ("smb_version", {"smb_version": "3.1.1; rm"}),
    ("backend_id", {"backend_id": "../../etc/passwd"}),
    ("username", {"username": "a\nb"}),
    ("password", {"password": "secret"}),  # passwords never go to the mount route
]


@pytest.mark.parametrize("field,override", HOSTILE_MOUNTS,
                         ids=["%s-%d" % (f, i) for i, (f, _) in enumerate(HOSTILE_MOUNTS)])
def test_hostile_mount_requests_are_400_and_touch_nothing(agent, smbd, field, override):
    body = base(smbd)
    for k, v in override.items():
        body[k] = v.replace("@ROOT@", agent.mount_root) if isinstance(v, str) else v
    before = snapshot(agent)
    st, r = agent.mount(**body)
    assert st == 400, r
    assert r["error"]["field"] == field, r
    assert r["error"]["message"]
    assert snapshot(agent) == before
    assert not os.path.exists("/tmp/pwned")


@pytest.mark.parametrize("body,field", [
    ({"backend_id": "not-a-uuid", "volume_id": "00000000-0000-4000-8000-000000000000",
      "size_bytes": 1}, "backend_id"),
    ({"backend_id": "00000000-0000-4000-8000-000000000000", "volume_id": "../x",
      "size_bytes": 1}, "volume_id"),
    ({"backend_id": "00000000-0000-4000-8000-000000000000",
      "volume_id": "00000000-0000-4000-8000-000000000000", "image": "../../etc/shadow"},
     "image"),
    ({"backend_id": "00000000-0000-4000-8000-000000000000",
      "volume_id": "00000000-0000-4000-8000-000000000000", "size_bytes": -1},
     "size_bytes"),
    ({"backend_id": "00000000-0000-4000-8000-000000000000",
      "volume_id": "00000000-0000-4000-8000-000000000000", "path": "/etc/x"}, "path"),
])
def test_hostile_volume_requests(agent, body, field):
    before = snapshot(agent)
    st, r = agent.request("POST", "/v1/storage/smb/volumes", body)
    assert st == 400, r
    assert r["error"]["field"] == field
    assert snapshot(agent) == before


@pytest.mark.parametrize("path", [
    "/v1/storage/smb/volumes/not-a-uuid",
    "/v1/storage/smb/volumes/00000000-0000-4000-8000-000000000000/..%2f..%2fetc",
    "/v1/storage/smb/credentials/..%2Fpasswd",
])
def test_hostile_path_params(agent, path):
    method = "GET" if path.count("/") == 5 else "DELETE"
    st, r = agent.request(method, path)
    assert st in (400, 404), r


def test_credentials_validation(agent):
    bid = new_id()
    for body, field in [({"username": "u", "password": "a\nb"}, "password"),
                        ({"username": "u\r", "password": "p"}, "username"),
                        ({"username": "u", "password": "p", "domain": "D\n"}, "domain"),
                        ({"username": "", "password": "p"}, "username"),
                        ({"password": "p"}, "username"),
                        ({"username": "u"}, "password"),
                        ({"username": "u", "password": "p", "extra": 1}, "extra")]:
        st, r = agent.request("PUT", "/v1/storage/smb/credentials/" + bid, body)
        assert st == 400 and r["error"]["field"] == field, (body, r)
    assert os.listdir(agent.cred_dir) == []
    st, r = agent.request("PUT", "/v1/storage/smb/credentials/" + bid,
                          raw=b'{"username":"u","password":"p","password":"q"}',
                          headers={"Content-Type": "application/json"})
    assert st == 400 and r["error"]["code"] == "invalid_json"
    st, r = agent.request("PUT", "/v1/storage/smb/credentials/" + bid, raw=b"username=u",
                          headers={"Content-Type": "text/plain"})
    assert st == 415
    st, r = agent.request("PUT", "/v1/storage/smb/credentials/" + bid,
                          raw=b'{"username":"' + b"a" * 20000 + b'"}',
                          headers={"Content-Type": "application/json"})
    assert st == 413


def test_routing_errors(agent):
    assert agent.request("GET", "/v1/nope")[0] == 404
    st, r = agent.request("PATCH", "/v1/storage/smb/mounts")
    assert st == 405 and r["error"]["code"] == "method_not_allowed"


def all_cmdlines():
    out = []
    for p in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(p, "rb") as f:
                out.append(f.read())
        except OSError:
            pass
    return out


def test_no_secret_in_log_argv_or_reply(agent, smbd):
    bid = new_id()
    secret = smbd.password.encode()
    st, r = agent.put_creds(bid, smbd.user, smbd.password)
    assert st == 204 and r is None
    replies = []
    replies.append(agent.mount(backend_id=bid, server=smbd.host, share="secure",
                               username=smbd.user, mount_options="port=%d" % smbd.port))
    assert replies[-1][0] == 200
    # The FUSE daemon serving the mount is running now: check every argv.
    assert any(b"nqrust-smbfs" in c for c in all_cmdlines())
    for c in all_cmdlines():
        assert secret not in c
    # A failing mount with a wrong password must not echo it either.
    bad = new_id()
    wrong = "WrongPass-" + smbd.password
    agent.put_creds(bad, smbd.user, wrong)
    replies.append(agent.mount(backend_id=bad, server=smbd.host, share="secure",
                               username=smbd.user, mount_options="port=%d" % smbd.port))
    replies.append(agent.request("GET", "/v1/storage/smb/mounts"))
    replies.append(agent.request("PUT", "/v1/storage/smb/credentials/" + bid,
                                 {"username": smbd.user, "password": smbd.password, "x": 1}))
    for st, body in replies:
        assert secret not in repr(body).encode() and wrong not in repr(body)
    log = agent.log()
    assert smbd.password not in log and wrong not in log
    for p in glob.glob(os.path.join(agent.state_dir, "**"), recursive=True):
        if os.path.isfile(p):
            with open(p, "rb") as f:
                assert secret not in f.read()


def test_unix_socket_mode(agent):
    st = os.stat(agent.socket)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660


def test_tcp_needs_bearer_token(agent_factory):
    a = agent_factory(tcp=True)
    assert a.tls_request("GET", "/v1/storage/smb/mounts")[0] == 401
    assert a.tls_request("GET", "/v1/storage/smb/mounts", token="x" * 64)[0] == 401
    assert a.tls_request("GET", "/v1/storage/smb/mounts", token=a.token[:-1])[0] == 401
    st, r = a.tls_request("GET", "/v1/storage/smb/mounts", token=a.token)
    assert st == 200 and r == []
    assert a.tls_request("GET", "/healthz")[0] == 200
    assert a.token not in a.log()


def test_unprivileged_peer_is_refused(agent):
    """A local user who can reach the socket file is still checked."""
    os.chmod(agent.socket, 0o666)
    os.chmod(os.path.dirname(agent.socket), 0o755)
    code = ("import socket;s=socket.socket(socket.AF_UNIX);s.connect(%r);"
            "s.sendall(b'GET /v1/storage/smb/mounts HTTP/1.0\\r\\n\\r\\n');"
            "print(s.recv(100).split()[1].decode())" % agent.socket)
    out = subprocess.run(["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", code],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "403", out


def test_bad_config_is_a_clear_error():
    a = Agent(extra_args=["--mount-driver", "nfs"])
    try:
        with pytest.raises(RuntimeError) as e:
            a.start()
        assert "mount_driver must be auto, kernel or fuse" in str(e.value)
        assert a.proc.returncode == 2
        a.proc = None  # it exited by design; cleanup checks clean exits only
    finally:
        a.cleanup()
