"""Security: X-Forwarded-For believed only from the load balancers; TLS (self-signed), redirect, HSTS,
WebSockets over TLS, the stats page and metrics behind a password that no --diff output shows.

The TLS and stats settings are applied with extra vars for this module only; at its end site.yml runs
again without them, so later tests (test_90_failover ...) see the default configuration.
"""

import base64
import http.client
import json
import ssl
import time
import urllib.parse
import urllib.request

import pytest
import yaml
from wt_http import new_session, session_page

CLIENT_ADDRESS = "127.0.10.200"  # no lab host has it; any 127/8 address is this machine's
FORGED_CLIENT = "198.51.100.7"
STATS_PASSWORD = "e2e-Stats-S3cret"
TLS_PEM = "/etc/haproxy/tls/wtstack.pem"
SECURE_VARS = {
    "haproxy_tls_enabled": True,
    "haproxy_tls_self_signed": True,
    "haproxy_tls_redirect": True,
    "haproxy_hsts_max_age": 31536000,
    "haproxy_stats_enabled": True,
    # Each load balancer's own address: the lab's hosts share this machine's network.
    "haproxy_stats_bind_address": "{{ ansible_host }}",
    "haproxy_stats_password": STATS_PASSWORD,
}


def whoami_from(host, port, client_address, headers=None, context=None):
    """GET /whoami from `client_address`; (status, JSON body)."""
    if context is None:
        connection = http.client.HTTPConnection(host, port, timeout=10, source_address=(client_address, 0))
    else:
        connection = http.client.HTTPSConnection(host, port, timeout=10, source_address=(client_address, 0),
                                                 context=context)
    try:
        connection.request("GET", "/whoami", headers={"Connection": "close", **(headers or {})})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def request(url, path="/", headers=None, context=None):
    """(status, headers, body) of one GET, following no redirect."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "https":
        connection = http.client.HTTPSConnection(parsed.hostname, parsed.port or 443, timeout=10, context=context)
    else:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port or 80, timeout=10)
    try:
        connection.request("GET", path, headers={"Connection": "close", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


# --- X-Forwarded-For: believed from the load balancers only (plain configuration) ---------------

def test_the_client_address_passes_through_the_load_balancers(lab, converged):
    for lb in lab.topology.lb_hosts:
        status, body = whoami_from(lab.address(lb), 80, CLIENT_ADDRESS)
        assert status == 200
        print(f"\n{lb}: /whoami from {CLIENT_ADDRESS} reports client {body['client']} ({body['prefix']})")
        assert body["client"] == CLIENT_ADDRESS, body


def test_a_forged_x_forwarded_for_is_not_believed_from_a_client(lab, converged):
    instance = lab.topology.instances[0]
    status, body = whoami_from(instance.connect_address, instance.port, CLIENT_ADDRESS,
                               headers={"X-Forwarded-For": FORGED_CLIENT})
    assert status == 200
    assert body["client"] == CLIENT_ADDRESS, body


# --- TLS, redirect, HSTS, stats: converged with extra vars, then restored ------------------------

@pytest.fixture(scope="module")
def secured(lab, converged, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("security")
    extra_vars = workdir / "secure.yml"
    extra_vars.write_text(yaml.safe_dump(SECURE_VARS))
    run = lab.playbook("site.yml", "--diff", "-e", f"@{extra_vars}")
    try:
        assert run.returncode == 0, run.output[-6000:]
        certificates = {lb: lab.ssh(lb, f"openssl x509 -in {TLS_PEM}") for lb in lab.topology.lb_hosts}
        ca_file = workdir / "load-balancers.pem"
        ca_file.write_text("".join(certificates.values()))
        context = ssl.create_default_context(cafile=str(ca_file))
        # wt_http's helpers go through urllib's global opener: make it trust the balancers' certificates.
        urllib.request.install_opener(urllib.request.build_opener(urllib.request.HTTPSHandler(context=context)))
        yield {"run": run, "context": context, "ca_file": ca_file, "certificates": certificates}
    finally:
        urllib.request.install_opener(urllib.request.build_opener())
        restored = lab.playbook("site.yml")
        assert restored.returncode == 0, restored.output[-6000:]
        for lb in lab.topology.lb_hosts:
            config = lab.ssh(lb, "cat /etc/haproxy/haproxy.cfg")
            assert " ssl crt " not in config and "frontend stats" not in config, f"{lb} kept the secure config"


def https_url(lab, lb):
    return f"https://{lab.address(lb)}"


def test_the_stats_password_is_in_no_output_even_with_diff(lab, secured):
    output = secured["run"].output
    assert "(item=/etc/haproxy/haproxy.cfg)" in output and "changed: [" in output, "haproxy.cfg did not change"
    assert STATS_PASSWORD not in output
    assert "$6$" not in output, "the password's hash was printed"


def test_https_works_with_each_balancers_own_certificate(lab, secured):
    for lb in lab.topology.lb_hosts:
        status, headers, dummy = request(https_url(lab, lb), "/health", context=secured["context"])
        assert status == 200
        served = ssl.get_server_certificate((lab.address(lb), 443))
        assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(secured["certificates"][lb])


def test_tls_is_modern(lab, secured):
    for lb in lab.topology.lb_hosts:
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(cafile=str(secured["ca_file"]))
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            request(https_url(lab, lb), "/health", context=old)


def test_plain_http_is_redirected_to_https(lab, secured):
    for lb in lab.topology.lb_hosts:
        status, headers, dummy = request(lab.url(lb), "/health?x=1")
        assert status == 301
        assert headers["Location"] == f"{https_url(lab, lb)}/health?x=1"
        assert "Strict-Transport-Security" not in headers


def test_hsts_on_tls(lab, secured):
    for lb in lab.topology.lb_hosts:
        status, headers, dummy = request(https_url(lab, lb), "/health", context=secured["context"])
        assert status == 200
        assert headers["Strict-Transport-Security"] == "max-age=31536000"


def test_the_client_address_passes_through_tls_too(lab, secured):
    for lb in lab.topology.lb_hosts:
        status, body = whoami_from(lab.address(lb), 443, CLIENT_ADDRESS, context=secured["context"])
        assert status == 200 and body["client"] == CLIENT_ADDRESS, body


def test_sessions_and_websockets_work_over_tls(lab, secured):
    import websocket

    for lb in lab.topology.lb_hosts:
        base_url = https_url(lab, lb)
        session_id = new_session(base_url)
        page = session_page(base_url, session_id)
        assert page.status == 200 and page.session_id == session_id
        url = f"wss://{lab.address(lb)}/?wtd={session_id}&request=ws"
        connection = websocket.create_connection(url, timeout=10, sslopt={"ca_certs": str(secured["ca_file"])})
        try:
            assert connection.getstatus() == 101
            assert connection.recv()  # Wt speaks first on a new WebSocket
        finally:
            connection.close()


def test_stats_page_and_metrics_need_the_password(lab, secured):
    credentials = base64.b64encode(f"stats:{STATS_PASSWORD}".encode()).decode()
    wrong = base64.b64encode(b"stats:wrong").decode()
    for lb in lab.topology.lb_hosts:
        stats_url = f"http://{lab.address(lb)}:8404"
        for path in ("/stats", "/metrics"):
            assert request(stats_url, path)[0] == 401
            assert request(stats_url, path, headers={"Authorization": f"Basic {wrong}"})[0] == 401
        status, dummy, body = request(stats_url, "/stats", headers={"Authorization": f"Basic {credentials}"})
        assert status == 200 and "Statistics Report" in body
        status, dummy, body = request(stats_url, "/metrics", headers={"Authorization": f"Basic {credentials}"})
        assert status == 200 and "haproxy_process_" in body and "haproxy_server_" in body


# Last in this module: it replaces the first balancer's certificate that the tests above trust.
def test_an_expiring_self_signed_certificate_is_renewed_and_a_ca_signed_one_kept(lab, secured):
    lb = lab.topology.lb_hosts[0]
    san = f"DNS:{lb},IP:{lab.address(lb)}"  # what the role would write: the default names
    extra_vars = f"@{secured['ca_file'].parent / 'secure.yml'}"

    def served():
        return ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((lab.address(lb), 443)))

    def served_from_disk():
        """The certificate in TLS_PEM, once HAProxy serves it (a connection can still reach the old
        worker for a moment after a reload)."""
        on_disk = base64.b64decode(lab.ssh(lb, f"openssl x509 -in {TLS_PEM} -outform DER | base64 -w0"))
        deadline = time.monotonic() + 10
        while served() != on_disk:
            assert time.monotonic() < deadline, "HAProxy does not serve the certificate on disk"
            time.sleep(0.2)
        return on_disk

    def install(script):
        """Put a certificate made by `script` (in $work: key.pem, cert.pem) in place, and load it."""
        lab.ssh(lb, f"set -e; umask 077; work=$(mktemp -d); {script}; cat $work/cert.pem $work/key.pem > {TLS_PEM}; "
                    "rm -r $work; systemctl reload haproxy")
        return served_from_disk()

    leaf = (f"openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN={lb} "
            f"-addext subjectAltName={san} -keyout $work/key.pem")
    # Signed by a CA (made here) and expiring tomorrow: yours, so the role leaves it alone.
    ca_signed = install(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=e2e-ca "
        f"-keyout $work/ca.key -out $work/ca.pem; {leaf} -out $work/req.pem; openssl x509 -req -in $work/req.pem "
        f"-CA $work/ca.pem -CAkey $work/ca.key -days 1 -copy_extensions copy -out $work/cert.pem")
    run = lab.playbook("site.yml", "--limit", lb, "-e", extra_vars, "-v")  # -v: the role's reason, below
    assert run.returncode == 0, run.output[-6000:]
    assert "keep: signed by CN=e2e-ca" in run.output, run.output[-6000:]
    assert served() == ca_signed and run.recap()[lb]["changed"] == 0

    # Self-signed, right names, expiring tomorrow: generated again and loaded, in one run.
    expiring = install(f"{leaf} -x509 -days 1 -out $work/cert.pem")
    checked = lab.playbook("site.yml", "--limit", lb, "-e", extra_vars, "--check")
    assert checked.returncode == 0, checked.output[-6000:]
    assert f"{TLS_PEM}: would renew: expires within 30 days" in checked.output, checked.output[-6000:]
    assert checked.recap()[lb]["changed"] > 0 and served_from_disk() == expiring, "check mode changed something"
    run = lab.playbook("site.yml", "--limit", lb, "-e", extra_vars, "-v")
    assert run.returncode == 0, run.output[-6000:]
    assert "renew: expires within 30 days" in run.output, run.output[-6000:]
    renewed = served_from_disk()
    assert renewed != expiring, "the expiring certificate is still there"
    valid_for_800_days = f"openssl x509 -in {TLS_PEM} -noout -checkend {800 * 86400} >/dev/null && echo yes"
    assert lab.ssh(lb, valid_for_800_days).strip() == "yes"

    again = lab.playbook("site.yml", "--limit", lb, "-e", extra_vars)
    assert again.returncode == 0 and again.recap()[lb]["changed"] == 0, again.output[-6000:]
    assert served() == renewed
    print(f"\n{lb}: CA-signed certificate kept; expiring self-signed one reported by --check, then renewed "
          "and served; re-run changed=0")
