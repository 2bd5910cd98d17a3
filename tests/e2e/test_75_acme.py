"""ACME: a certificate for the lab's name from a real ACME server, obtained, renewed and served by both balancers.

pebble (the Let's Encrypt team's test CA) and pebble-challtestsrv (its DNS server) run on this machine at
.240 of the lab's /24 (127.0.10.240 with the default fleet). pebble resolves the certificate's name through
challtestsrv, which answers with the first balancer unless told otherwise, and validates HTTP-01 on port 80
for real: no "always valid" shortcut, and no reuse of an earlier authorization, so every issuance is
validated through whichever balancer the name points at then.

The ACME settings are applied with extra vars for this module; at its end site.yml runs on the balancers
without them (nothing on the app hosts depends on TLS), so later tests see the default configuration.
"""

import datetime
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field

import pytest
import wt_http
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from load import INTERVAL, SESSIONS, SessionLoad
from wt_http import assert_session_and_websocket_over_tls

NAME = "wtstack.test"
PEBBLE_HOST = 240  # pebble and challtestsrv: this host number of the lab's /24
REFUSED_HOST = 241  # nothing listens there: the name pointed at it cannot be validated
LIFETIME_DAYS = 90  # pebble's certificates, as Let's Encrypt's
DUE = LIFETIME_DAYS  # a renewal window that makes any of them due
ISSUER_TIMER = "wtstack-acme-renew"


# --- pebble --------------------------------------------------------------------------------------

def directory_certificates(directory, address):
    """A CA and, signed by it, pebble's own HTTPS certificate for `address` (pebble serves its directory
    under it): the private CA the role is told to trust (haproxy_tls_acme_directory_ca_file)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wtstack e2e ACME directory CA")])

    def builder(subject, public_key, issuer_key):
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                               critical=False))

    usage = dict(content_commitment=False, data_encipherment=False, key_agreement=False,
                 encipher_only=False, decipher_only=False)
    ca = (builder(ca_name, ca_key.public_key(), ca_key)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=True,
                                       crl_sign=True, **usage), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server = (builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble")]), key.public_key(), ca_key)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                           crl_sign=False, **usage), critical=True)
              .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


@dataclass
class Pebble:
    address: str
    workdir: object
    log_dir: object
    processes: dict = field(default_factory=dict)

    @property
    def directory_url(self):
        return f"https://{self.address}:14000/dir"

    def start(self, default_address):
        self.certificates = directory_certificates(self.workdir, self.address)
        config = self.workdir / "pebble.json"
        config.write_text(json.dumps({"pebble": {
            "listenAddress": f"{self.address}:14000", "managementListenAddress": f"{self.address}:15000",
            "certificate": str(self.certificates["cert"]), "privateKey": str(self.certificates["key"]),
            # HTTP-01 on port 80, where the balancers listen (pebble's default is 5002); TLS-ALPN-01 unused.
            "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": False,
            "certificateValidityPeriod": LIFETIME_DAYS * 86400}}))
        self.spawn("challtestsrv", ["pebble-challtestsrv", "-defaultIPv4", default_address, "-defaultIPv6", "",
                                    "-dns01", f"{self.address}:8053", "-management", f"{self.address}:8055",
                                    "-http01", "", "-https01", "", "-tlsalpn01", ""])
        # No random sleep before validating, no nonce rejected at random, no authorization reused.
        self.spawn("pebble", ["pebble", "-config", str(config), "-dnsserver", f"{self.address}:8053"],
                   env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"})
        context = ssl.create_default_context(cafile=str(self.certificates["ca"]))
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(self.directory_url, timeout=2, context=context).close()
                return self
            except OSError:
                assert time.monotonic() < deadline, f"pebble did not answer:\n{self.log('pebble')[-2000:]}"
                time.sleep(0.2)

    def spawn(self, name, argv, env=None):
        log = open(self.log_dir / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        self.processes[name] = (subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                                 env={**os.environ, **(env or {})}), log)

    def log(self, name):
        return (self.log_dir / f"{name}.log").read_text()

    def stop(self, name="pebble"):
        process, log = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()

    def point(self, address):
        """Make the certificate's name resolve (for pebble) to `address` only."""
        for action, body in (("clear-a", {"host": NAME}), ("add-a", {"host": NAME, "addresses": [address]})):
            request = urllib.request.Request(f"http://{self.address}:8055/{action}", method="POST",
                                             data=json.dumps(body).encode())
            urllib.request.urlopen(request, timeout=5).close()

    def root(self):
        """pebble's root, made at its start, which signs (through its intermediate) what it issues."""
        context = ssl.create_default_context(cafile=str(self.certificates["ca"]))
        with urllib.request.urlopen(f"https://{self.address}:15000/roots/0", timeout=5, context=context) as answer:
            return answer.read().decode()


class ServerNameContext(ssl.SSLContext):
    """Presents and verifies the certificate's name whatever address it connects to, as a client that resolved
    the name to the balancer it talks to would (the lab's name resolves only for pebble)."""

    def wrap_socket(self, sock, *args, server_hostname=None, **kwargs):
        return super().wrap_socket(sock, *args, server_hostname=NAME, **kwargs)


def lab_address(lab, host_number):
    network = ipaddress.ip_network(f"{lab.address(lab.topology.lb_hosts[0])}/24", strict=False)
    return str(network.network_address + host_number)


@pytest.fixture(scope="module")
def pebble(lab, tmp_path_factory):
    for command in ("pebble", "pebble-challtestsrv"):
        if not shutil.which(command):
            pytest.fail(f"{command} is missing: apt-get install pebble (.ci/run installs it)")
    server = Pebble(lab_address(lab, PEBBLE_HOST), tmp_path_factory.mktemp("pebble"), lab.output_dir)
    try:
        yield server.start(default_address=lab.address(lab.topology.lb_hosts[0]))
    finally:
        for name in list(server.processes):
            server.stop(name)


# --- the fleet with ACME ---------------------------------------------------------------------------

def write_vars(path, values):
    path.write_text(yaml.safe_dump(values))
    return f"@{path}"


@dataclass
class Acme:
    issuer: str
    peers: list
    settings: str  # -e @file: the ACME settings
    due: str  # -e @file: the same with a renewal window that makes the certificate due
    context: ssl.SSLContext
    first_run: object
    since: float


def trusting(root):
    context = ServerNameContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=root)
    return context


@pytest.fixture(scope="module")
def acme(lab, converged, pebble, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("acme")
    settings = {"haproxy_tls_enabled": True, "haproxy_tls_redirect": True, "haproxy_tls_acme": True,
                "haproxy_tls_acme_names": [NAME], "haproxy_tls_acme_directory_url": pebble.directory_url,
                "haproxy_tls_acme_directory_ca_file": str(pebble.certificates["ca"]),
                "haproxy_tls_acme_email": f"ops@{NAME}"}
    # pebble is a new CA at each start (accounts, roots): what certbot holds from an earlier session's is void
    # (after a session that stopped before this module's end: WTSTACK_KEEP_LAB=1).
    lab.ssh(lab.topology.lb_hosts[0], "rm -rf /var/lib/wtstack-acme")
    since = time.time()
    run = lab.playbook("site.yml", "-v", "-e", write_vars(workdir / "acme.yml", settings))
    try:
        assert run.returncode == 0, run.output[-6000:]
        context = trusting(pebble.root())
        # wt_http's helpers: urllib's global opener (get, new_session) and get_from_port (the load).
        urllib.request.install_opener(urllib.request.build_opener(urllib.request.HTTPSHandler(context=context)))
        wt_http.TLS_CONTEXT = context
        yield Acme(issuer=lab.topology.lb_hosts[0], peers=list(lab.topology.lb_hosts[1:]),
                   settings=f"@{workdir / 'acme.yml'}",
                   due=write_vars(workdir / "due.yml", {**settings, "haproxy_tls_acme_renew_days": DUE}),
                   context=context, first_run=run, since=since)
    finally:
        urllib.request.install_opener(urllib.request.build_opener())
        wt_http.TLS_CONTEXT = None
        restored = lab.playbook("site.yml", "--limit", lab.topology.haproxy_group)
        assert restored.returncode == 0, restored.output[-6000:]
        for lb in lab.topology.lb_hosts:
            config = lab.ssh(lb, "cat /etc/haproxy/haproxy.cfg")
            assert " ssl crt " not in config and "acme_challenge" not in config, f"{lb} kept the ACME config"
            timer = lab.ssh(lb, f"systemctl is-enabled {ISSUER_TIMER}.timer", check=False).strip()
            assert timer in ("", "not-found"), f"{lb}: the renewal timer is still {timer}"
            # The role leaves a CA's certificate in place (haproxy_tls_self_signed never replaces one); this
            # one is pebble's, void when pebble stops: the balancers go back to having none.
            lab.ssh(lb, "rm -f /etc/haproxy/tls/wtstack.pem")
        lab.ssh(lab.topology.lb_hosts[0], "rm -rf /var/lib/wtstack-acme")


def https_url(lab, lb):
    return f"https://{lab.address(lb)}"


def served(lab, lb, context):
    """The certificate the balancer presents, verified against pebble's root and for the lab's name."""
    with socket.create_connection((lab.address(lb), 443), timeout=10) as connection:
        with context.wrap_socket(connection) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def wait_until_served(lab, lb, context, serial, timeout=10):
    """A connection can still reach the old worker for a moment after a reload."""
    deadline = time.monotonic() + timeout
    while (certificate := served(lab, lb, context)).serial_number != serial:
        assert time.monotonic() < deadline, f"{lb} serves {certificate.serial_number:x}, not {serial:x}"
        time.sleep(0.2)
    return certificate


def validations(lab, lb, since):
    """How many of the CA's HTTP-01 requests this balancer's HAProxy answered with 200 since `since`."""
    journal = lab.ssh(lb, f"journalctl -u haproxy --no-pager -o cat --since @{int(since)}")
    return len(re.findall(r" acme_challenge/certbot \S+ 200 ", journal))


def certificate_on_disk(lab, lb):
    pem = lab.ssh(lb, "openssl x509 -in /etc/haproxy/tls/wtstack.pem")
    return x509.load_pem_x509_certificate(pem.encode())


def untouched_state(lab):
    """What a failed run must leave as it was: the files HAProxy loads and its worker (a reload replaces it)."""
    state = {}
    for lb in lab.topology.lb_hosts:
        sums = lab.ssh(lb, "md5sum /etc/haproxy/haproxy.cfg /etc/haproxy/wt-sessions.map /etc/haproxy/tls/wtstack.pem")
        worker = re.search(r"^Pid: (\d+)", lab.runtime_api(lb, "show info"), re.M).group(1)
        state[lb] = (sums, worker)
    return state


def one_line(text):
    return " ".join(text.split())


# --- the tests, in order -------------------------------------------------------------------------

def test_site_yml_obtains_one_certificate_that_both_balancers_serve(lab, acme):
    certificates = {lb: served(lab, lb, acme.context) for lb in lab.topology.lb_hosts}
    first = certificates[acme.issuer]
    for lb, certificate in certificates.items():
        assert certificate.fingerprint(hashes.SHA256()) == first.fingerprint(hashes.SHA256()), f"{lb} serves another"
    assert first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [NAME]
    assert first.issuer.rfc4514_string().startswith("CN=Pebble Intermediate CA")
    # challtestsrv points the name at the first balancer: the CA's requests went there, and were answered.
    assert validations(lab, acme.issuer, acme.since) > 0
    issuance = re.search(r"Issue or renew the certificate.*?\n\s+delta: '?([0-9:.]+)", acme.first_run.output, re.S)
    print(f"\nfirst site.yml with ACME took {acme.first_run.seconds:.0f}s; wtstack-acme renew (certbot, "
          f"validation, issuance, install, reload) {issuance.group(1) if issuance else '?'}; serial "
          f"{first.serial_number:x} served by {', '.join(certificates)}")


def test_https_serves_the_wt_demo_with_websockets_through_both_balancers(lab, acme):
    for lb in lab.topology.lb_hosts:
        assert_session_and_websocket_over_tls(lab.address(lb), {"context": acme.context})


def test_the_acme_challenge_is_not_redirected_to_https(lab, acme):
    for lb in lab.topology.lb_hosts:
        status = wt_http.get(f"{lab.url(lb)}/.well-known/acme-challenge/no-such-token")[0]
        assert status == 503  # certbot is not running: HAProxy has nobody to ask, and no redirect either
        assert wt_http.get(f"{lab.url(lb)}/health")[0] == 200  # followed the 301 to https://


def test_a_rerun_changes_nothing(lab, acme):
    run = lab.playbook("site.yml", "-e", acme.settings)
    assert run.returncode == 0, run.output[-6000:]
    changed = {host: counts["changed"] for host, counts in run.recap().items()}
    assert set(changed.values()) == {0}, changed
    print(f"\nre-run of site.yml: changed=0 on every host ({run.seconds:.0f}s)")


def test_check_mode_says_what_it_would_renew_and_renews_nothing(lab, acme):
    before = {lb: served(lab, lb, acme.context).serial_number for lb in lab.topology.lb_hosts}
    run = lab.playbook("site.yml", "--limit", lab.topology.haproxy_group, "-e", acme.due, "--check")
    assert run.returncode == 0, run.output[-6000:]
    assert (f"{acme.issuer}: would renew the certificate for {NAME}: it expires on" in one_line(run.output)
            and f"within the renewal window of {DUE} days" in one_line(run.output)), run.output[-6000:]
    assert {lb: served(lab, lb, acme.context).serial_number for lb in lab.topology.lb_hosts} == before


def test_a_due_certificate_is_renewed_through_the_second_balancer_under_load(lab, acme, pebble):
    """The name now resolves to the second balancer only: the CA validates there, and certbot on the first
    answers through it. HAProxy reloads on both while the rolling tests' load runs over https."""
    old = served(lab, acme.issuer, acme.context).serial_number
    second = acme.peers[0]
    pebble.point(lab.address(second))
    prefixes = [instance.prefix for instance in lab.topology.instances]
    load = SessionLoad([https_url(lab, lb) for lb in lab.topology.lb_hosts], prefixes, sessions=SESSIONS,
                       interval=INTERVAL, on_stall=lab.snapshot_stall).start()
    since = time.time()
    try:
        run = lab.playbook("site.yml", "--limit", lab.topology.haproxy_group, "-e", acme.due)
        time.sleep(2)  # requests after the reloads, too
    finally:
        load.stop()
    print(f"\nrenewal: {load.summary()} during a {run.seconds:.0f}s site.yml run")
    assert run.returncode == 0, run.output[-6000:]
    load.assert_no_failed_request(lab)
    new = served(lab, acme.issuer, acme.context).serial_number
    assert new != old, "the due certificate was not renewed"
    for lb in lab.topology.lb_hosts:
        wait_until_served(lab, lb, acme.context, new)
    assert validations(lab, second, since) > 0, f"the CA's requests did not reach {second}"
    assert validations(lab, acme.issuer, since) == 0, f"the CA's requests reached {acme.issuer}"
    print(f"serial {old:x} -> {new:x} on every balancer; validated through {second} only")


def test_the_timer_renews_on_the_issuing_balancer_and_the_others_keep_theirs_until_the_next_run(lab, acme):
    # The due window is in wtstack-acme's settings now (the last run wrote them); the timer's service uses them.
    previous = served(lab, acme.issuer, acme.context).serial_number
    assert lab.ssh(acme.issuer, f"systemctl is-enabled {ISSUER_TIMER}.timer").strip() == "enabled"
    for peer in acme.peers:
        assert lab.ssh(peer, f"systemctl is-enabled {ISSUER_TIMER}.timer", check=False).strip() in ("", "not-found")
    since = time.time()
    lab.ssh(acme.issuer, f"systemctl start {ISSUER_TIMER}.service", timeout=300)
    journal = lab.ssh(acme.issuer, f"journalctl -u {ISSUER_TIMER} --no-pager -o cat --since @{int(since)}")
    assert "wtstack-acme: renew: it expires on" in journal and "(done)" in journal, journal
    renewed = certificate_on_disk(lab, acme.issuer).serial_number
    assert renewed != previous
    wait_until_served(lab, acme.issuer, acme.context, renewed)
    for peer in acme.peers:
        assert served(lab, peer, acme.context).serial_number == previous  # until the next run (last test)


def assert_failed_and_kept(lab, run, before, *expected):
    """The run failed with the role's message quoting `expected`; it changed nothing and reloaded nothing."""
    assert run.returncode != 0, run.output[-6000:]
    message = re.search(r"Action failed: (.*?) The certificate in service stays", one_line(run.output))
    assert message, run.output[-6000:]
    for fragment in expected:
        assert fragment in message.group(1), message.group(1)
    changed = {host: counts["changed"] for host, counts in run.recap().items()}
    assert set(changed.values()) == {0}, changed
    assert untouched_state(lab) == before, "a failed run changed a file HAProxy loads, or reloaded it"
    return message.group(1)


def test_a_refused_validation_fails_the_run_with_the_cas_error_and_changes_nothing(lab, acme, pebble):
    refused = lab_address(lab, REFUSED_HOST)
    pebble.point(refused)
    before = untouched_state(lab)
    run = lab.playbook("site.yml", "--limit", lab.topology.haproxy_group, "-e", acme.due)
    # pebble's own problem document, as certbot quotes it.
    message = assert_failed_and_kept(lab, run, before, "The Certificate Authority reported these problems",
                                     f"dial tcp {refused}:80: connect: connection refused")
    print(f"\nvalidation refused ({run.seconds:.0f}s): {message}")


def test_a_stopped_ca_fails_the_run_with_its_error_and_changes_nothing(lab, acme, pebble):
    pebble.point(lab.address(acme.peers[0]))
    pebble.stop()
    before = untouched_state(lab)
    run = lab.playbook("site.yml", "--limit", lab.topology.haproxy_group, "-e", acme.due)
    message = assert_failed_and_kept(lab, run, before, pebble.address, "Connection refused")
    print(f"\nCA stopped ({run.seconds:.0f}s): {message}")


def test_the_next_run_gives_every_balancer_the_issuers_certificate_without_asking_the_ca(lab, acme):
    # pebble is stopped: a run with the normal window must not need it.
    renewed = certificate_on_disk(lab, acme.issuer).serial_number
    run = lab.playbook("site.yml", "--limit", lab.topology.haproxy_group, "-e", acme.settings)
    assert run.returncode == 0, run.output[-6000:]
    for lb in lab.topology.lb_hosts:
        wait_until_served(lab, lb, acme.context, renewed)
