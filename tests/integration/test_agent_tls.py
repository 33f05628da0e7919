"""Issue 12: the agent's secure link and identity.

The TCP listener speaks only TLS: a self-signed ECDSA P-256 pair generated
once in <state-dir>/tls (or the --tls-cert/--tls-key given), its SHA-256
fingerprint logged and reported by GET /v1/host; a plain-HTTP client gets
no HTTP answer; every request but /healthz needs the bearer token. The
agent has a persistent id and a host name; --report-memory-mib makes the
memory figures deterministic for placement tests."""

import os
import re
import socket
import ssl
import stat
import subprocess
import uuid

import pytest

from fixtures_agent import (REPO, Agent, FingerprintMismatch, cert_file_fingerprint,
                            new_id, tls_connect)
from fixtures_vm import create, kill_vmms, put_image

MiB = 1 << 20


def openssl(*args, stdin=None):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, input=stdin)
    assert r.returncode == 0, r.stderr
    return r.stdout


def openssl_fingerprint(path):
    out = openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", path)
    return out.strip().split("=", 1)[1]


def make_pair(directory, name, cn="given.example", key="ec"):
    """A self-signed certificate and key made by openssl: (cert, key)."""
    cert, keyf = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    newkey = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
              if key == "ec" else ["-newkey", "rsa:2048"])
    openssl("req", "-x509", *newkey, "-nodes", "-keyout", keyf, "-out", cert,
            "-subj", "/CN=" + cn, "-days", "2")
    os.chmod(keyf, 0o600)
    return cert, keyf


def host(agent):
    st, h = agent.request("GET", "/v1/host")
    assert st == 200, h
    return h


def start_fails(**kw):
    """An agent that must refuse to start: its log."""
    a = Agent(**kw)
    a.check_exit = False
    try:
        with pytest.raises(RuntimeError) as e:
            a.start()
        assert a.proc.returncode not in (0, None)
        return str(e.value)
    finally:
        a.cleanup()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_generated_pair_is_private_and_reused_across_restart(agent_factory):
    a = agent_factory(tcp=True)
    tls_dir = os.path.join(a.state_dir, "tls")
    cert, key = os.path.join(tls_dir, "agent-cert.pem"), os.path.join(tls_dir, "agent-key.pem")
    assert mode(tls_dir) == 0o700
    assert mode(key) == 0o600
    assert mode(cert) == 0o644
    assert sorted(os.listdir(tls_dir)) == ["agent-cert.pem", "agent-key.pem"]  # no temp left
    with open(cert) as f:
        pem = f.read()
    fp = a.tls_fingerprint
    assert host(a)["tls_fingerprint"] == fp == openssl_fingerprint(cert)
    assert "generated a self-signed TLS certificate" in a.log()

    a.restart()
    with open(cert) as f:
        assert f.read() == pem
    assert a.tls_fingerprint == fp and host(a)["tls_fingerprint"] == fp
    assert a.log().count("generated a self-signed TLS certificate") == 1
    st, r = a.tls_request("GET", "/v1/host", token=a.token, fingerprint=fp)
    assert st == 200 and r["tls_fingerprint"] == fp


def test_fingerprint_is_openssls_and_logged(agent_factory):
    a = agent_factory(tcp=True)
    cert = a.tls_cert_path
    fp = openssl_fingerprint(cert)
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fp)
    assert host(a)["tls_fingerprint"] == fp
    # What the server presents on the wire is that certificate.
    s = tls_connect("127.0.0.1", a.tcp_port, fp)
    s.close()
    line = "agent TLS listening address=127.0.0.1:%d fingerprint=%s" % (a.tcp_port, fp)
    assert line in a.log()


def test_generated_certificate_fields(agent_factory):
    a = agent_factory(tcp=True, extra_args=["--host-name", "node-7.lab"])
    text = openssl("x509", "-noout", "-text", "-in", a.tls_cert_path)
    assert "Subject: CN = node-7.lab" in text
    assert "Issuer: CN = node-7.lab" in text  # self-signed
    assert "DNS:node-7.lab" in text
    assert "prime256v1" in text and "ecdsa-with-SHA256" in text
    assert "CA:FALSE" in text
    assert re.search(r"Key Usage: critical\s+Digital Signature\s", text)
    assert "TLS Web Server Authentication" in text
    # About ten years.
    end = openssl("x509", "-noout", "-enddate", "-in", a.tls_cert_path)
    year = int(end.strip().split()[-2])
    now = int(subprocess.run(["date", "-u", "+%Y"], capture_output=True,
                             text=True).stdout)
    assert year - now == 10, end
    # The serial is random: another agent's differs.
    b = agent_factory(tcp=True, extra_args=["--host-name", "node-7.lab"])
    s1 = openssl("x509", "-noout", "-serial", "-in", a.tls_cert_path)
    s2 = openssl("x509", "-noout", "-serial", "-in", b.tls_cert_path)
    assert s1 != s2 and len(s1.strip()) > len("serial=") + 16
    # The key is an EC key that openssl reads.
    openssl("pkey", "-noout", "-in", os.path.join(a.state_dir, "tls", "agent-key.pem"))


@pytest.mark.parametrize("key", ["ec", "rsa"])
def test_given_cert_and_key_are_used(agent_factory, tmp_path, key):
    cert, keyf = make_pair(str(tmp_path), "given", key=key)
    a = agent_factory(tcp=True, tls_cert=cert, tls_key=keyf)
    fp = openssl_fingerprint(cert)
    assert a.tls_fingerprint == fp and host(a)["tls_fingerprint"] == fp
    st, r = a.tls_request("GET", "/v1/host", token=a.token)
    assert st == 200 and r["tls_fingerprint"] == fp
    assert not os.path.exists(os.path.join(a.state_dir, "tls"))  # nothing generated


@pytest.mark.parametrize("given", ["tls_cert", "tls_key"])
def test_only_one_of_cert_and_key_is_refused(tmp_path, given):
    cert, keyf = make_pair(str(tmp_path), "one")
    flag = ["--tls-cert", cert] if given == "tls_cert" else ["--tls-key", keyf]
    log = start_fails(tcp=True, extra_args=flag)
    missing = "tls_key" if given == "tls_cert" else "tls_cert"
    assert "%s is missing" % missing in log, log


def _garbage_cert(d, cert, keyf):
    with open(cert, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    return cert, cert, keyf


def _other_key(d, cert, keyf):
    _, other = make_pair(d, "other")
    return other, cert, other


def _missing_key(d, cert, keyf):
    os.unlink(keyf)
    return keyf, cert, keyf


def _open_key(d, cert, keyf):
    os.chmod(keyf, 0o644)
    return keyf, cert, keyf


def _encrypted_key(d, cert, keyf):
    enc = os.path.join(d, "enc.key")
    openssl("pkey", "-in", keyf, "-out", enc, "-aes256", "-passout", "pass:secret-pw")
    os.chmod(enc, 0o600)
    return enc, cert, enc


@pytest.mark.parametrize("breaker, words", [
    (_garbage_cert, "TLS certificate is not a PEM X.509 certificate"),
    (_other_key, "TLS key does not belong to the certificate"),
    (_missing_key, "cannot read the TLS key"),
    (_open_key, "must not be accessible to others"),
    (_encrypted_key, "TLS key is not an unencrypted PEM private key"),
])
def test_bad_cert_or_key_is_refused_naming_the_file(tmp_path, breaker, words):
    cert, keyf = make_pair(str(tmp_path), "pair")
    named, cert, keyf = breaker(str(tmp_path), cert, keyf)
    log = start_fails(tcp=True, tls_cert=cert, tls_key=keyf)
    assert words in log, log
    assert named in log, log
    assert "secret-pw" not in log


def test_damaged_generated_key_is_refused(agent_factory):
    a = agent_factory(tcp=True)
    a.stop()
    key = os.path.join(a.state_dir, "tls", "agent-key.pem")
    with open(key, "w") as f:
        f.write("garbage\n")
    with pytest.raises(RuntimeError) as e:
        a.start()
    assert "TLS key is not an unencrypted PEM private key path=" + key in str(e.value)
    a.proc = None


def test_plain_http_to_the_tls_port_gets_no_http_answer(agent_factory):
    a = agent_factory(tcp=True)
    with socket.create_connection(("127.0.0.1", a.tcp_port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    assert b"HTTP/" not in got and b"status" not in got, got
    # ... while the same request inside TLS is answered.
    st, r = a.tls_request("GET", "/healthz")
    assert st == 200 and r == {"status": "ok"}


def test_token_is_required_and_certificate_pinned(agent_factory):
    a = agent_factory(tcp=True)
    for token in (None, "x" * 64, a.token[:-1]):
        st, r = a.tls_request("GET", "/v1/host", token=token)
        assert st == 401 and r["error"]["code"] == "unauthorized", r
    st, r = a.tls_request("POST", "/v1/vms", token="y" * 40, body={})
    assert st == 401
    assert a.tls_request("GET", "/healthz")[0] == 200
    assert a.tls_request("GET", "/v1/host", token=a.token)[0] == 200
    # A client pinning another fingerprint sends nothing.
    wrong = "00" * 32
    with pytest.raises(FingerprintMismatch):
        a.tls_request("GET", "/v1/host", token=a.token, fingerprint=wrong)
    assert a.log().count("path=/v1/host status=200") == 1
    assert a.token not in a.log()


def test_host_info(agent_factory):
    a = agent_factory(tcp=True, extra_args=["--host-name", "rack1-node2"])
    h = host(a)
    with open(os.path.join(a.state_dir, "agent-id")) as f:
        agent_id = f.read().strip()
    assert str(uuid.UUID(agent_id)) == agent_id == h["agent_id"]
    assert mode(os.path.join(a.state_dir, "agent-id")) == 0o644
    assert h["name"] == "rack1-node2"
    assert h["cpus"] == os.cpu_count()
    with open("/proc/meminfo") as f:
        total = int(re.search(r"MemTotal:\s+(\d+) kB", f.read()).group(1)) // 1024
    assert h["memory_mib"] == total
    assert 0 < h["memory_free_mib"] <= h["memory_mib"]
    assert h["lease_seconds"] == 30
    with open(os.path.join(REPO, "meson.build")) as f:
        version = re.search(r"version: '([^']+)'", f.read()).group(1)
    assert h["version"] == version
    assert set(h["backend_kinds"]) == {"smb", "localfile"}
    assert isinstance(h["hypervisors"], list)
    assert h["tls_fingerprint"] == a.tls_fingerprint
    # Over TLS the same.
    st, r = a.tls_request("GET", "/v1/host", token=a.token)
    assert st == 200 and r["agent_id"] == agent_id
    # The id survives a restart; the name follows the flag.
    a.extra_args = []
    a.restart()
    h2 = host(a)
    assert h2["agent_id"] == agent_id
    assert h2["name"] == socket.gethostname().split(".")[0] or \
        h2["name"] == socket.gethostname()


def test_host_info_without_tcp_and_other_agents(agent_factory):
    a = agent_factory(extra_args=["--lease-seconds", "30"])
    b = agent_factory()
    ha, hb = host(a), host(b)
    assert ha["tls_fingerprint"] is None
    assert not os.path.exists(os.path.join(a.state_dir, "tls"))
    assert ha["lease_seconds"] == 30
    assert ha["agent_id"] != hb["agent_id"]


@pytest.mark.parametrize("name", ["", "-lead", "has space", "a" * 64, "x/y"])
def test_bad_host_name_is_refused(name):
    log = start_fails(extra_args=["--host-name", name])
    assert "host_name must be" in log, log


def test_corrupt_agent_id_is_refused(agent_factory):
    a = agent_factory()
    a.stop()
    with open(os.path.join(a.state_dir, "agent-id"), "w") as f:
        f.write("not-a-uuid\n")
    with pytest.raises(RuntimeError) as e:
        a.start()
    assert "agent id file does not hold a UUID" in str(e.value)
    a.proc = None


def test_report_memory_mib_counts_running_vms(fake_fc):
    a = Agent(tcp=True, extra_args=["--firecracker-path", fake_fc.path,
                                    "--report-memory-mib", "4096"]).start()
    try:
        put_image(a, "vmlinux", 0, b"\x7fELF fake kernel for the fake firecracker")
        put_image(a, "rootfs.ext4", 16 * MiB)
        st, r = a.request("PUT", "/v1/storage/localfile/backends/localfile-default", {})
        assert st == 200, r
        h = host(a)
        assert h["memory_mib"] == 4096 and h["memory_free_mib"] == 4096, h

        vms = []
        for mem, start in ((512, True), (1024, True), (3072, False)):
            vid = new_id()
            st, v = a.request("POST", "/v1/storage/localfile/volumes",
                              {"backend_id": "localfile-default", "volume_id": vid,
                               "image": "rootfs.ext4"})
            assert st == 201, v
            st, vm = create(a, "localfile-default", vid, backend_kind="localfile",
                            memory_mib=mem, start=start)
            assert st == 201, vm
            vms.append(vm)
        # Running: 512 + 1024; the stopped 3072 does not count.
        st, h = a.tls_request("GET", "/v1/host", token=a.token)
        assert st == 200 and h["memory_mib"] == 4096
        assert h["memory_free_mib"] == 4096 - 512 - 1024, h
        st, r = a.request("POST", "/v1/vms/%s/stop" % vms[0]["id"])
        assert st == 200 and r["state"] == "stopped", r
        assert host(a)["memory_free_mib"] == 4096 - 1024
        st, r = a.request("POST", "/v1/vms/%s/start" % vms[2]["id"])
        assert st == 200 and r["state"] == "running", r
        assert host(a)["memory_free_mib"] == 4096 - 1024 - 3072 == 0
        st, r = a.request("POST", "/v1/vms/%s/start" % vms[0]["id"])
        assert st == 200, r
        assert host(a)["memory_free_mib"] == 0  # overcommitted: never below 0
        st, _ = a.request("DELETE", "/v1/vms/" + vms[2]["id"])
        assert st == 204
        assert host(a)["memory_free_mib"] == 4096 - 1024 - 512
    finally:
        kill_vmms(a)
        a.cleanup()


def test_ssl_module_refuses_without_pinning_helper(agent_factory):
    """The self-signed certificate is not trusted by default: a client
    that neither pins nor verifies against it cannot talk (what makes the
    pin necessary)."""
    a = agent_factory(tcp=True)
    ctx = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", a.tcp_port), timeout=10) as s:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(s, server_hostname="localhost")
