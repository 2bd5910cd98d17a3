"""wtstack-acme (roles/haproxy/files/wtstack_acme.py), the program the haproxy role installs on the balancers
for ACME: its renewal decision, what it asks certbot, how it reports certbot's failures, and how it puts a
certificate in service, with real certificates, real files and the real haproxy (certbot and pebble run in
tests/e2e/test_75_acme.py).
"""

import datetime
import importlib.util
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PROGRAM = Path(__file__).resolve().parents[5] / "roles" / "haproxy" / "files" / "wtstack_acme.py"
_spec = importlib.util.spec_from_file_location("wtstack_acme", PROGRAM)
acme = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(acme)

NOW = datetime.datetime(2026, 11, 29, 12, 0, tzinfo=datetime.timezone.utc)
DIRECTORY = "https://acme.example/directory"
# certbot's output when the CA could not validate a name (certbot 4.0 against pebble, in the lab).
CERTBOT_STDOUT = """Renewing an existing certificate for wtstack.test

Certbot failed to authenticate some domains (authenticator: standalone). The Certificate Authority reported these \
problems:
  Domain: wtstack.test
  Type:   connection
  Detail: Get "http://wtstack.test:80/.well-known/acme-challenge/GB42": dial tcp 127.0.11.241:80: connect: \
connection refused

Hint: The Certificate Authority failed to download the challenge files from the temporary standalone webserver \
started by Certbot on 127.0.11.1:8402. Ensure that the listed domains point to this machine and that it can accept \
inbound connections from the internet.

"""
CERTBOT_STDERR = """Saving debug log to /var/log/wtstack-acme/letsencrypt.log
Some challenges have failed.
Ask for help or search for solutions at https://community.letsencrypt.org. See the logfile \
/var/log/wtstack-acme/letsencrypt.log or re-run Certbot with -v for more details.
"""


def config(tmp_path, **overrides):
    return {"names": ["www.example.org", "example.org"], "directory_url": DIRECTORY, "directory_ca_file": None,
            "email": "ops@example.org", "renew_days": 30, "challenge_address": "192.0.2.10", "challenge_port": 8402,
            "pem_path": str(tmp_path / "tls" / "site.pem"), "haproxy_config": str(tmp_path / "haproxy.cfg"),
            # Not this machine's HAProxy, if it has one: a unit that does not exist is not running, so not reloaded.
            "haproxy_service": "wtstack-acme-unit-test-no-such-unit", **overrides}


def make_certificate(names, not_before, days, key=None):
    """(certificate PEM, key PEM) signed by a throwaway CA, as an ACME CA would issue it."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = key or ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Intermediate CA")])
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    certificate = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before).not_valid_after(not_before + datetime.timedelta(days=days))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
                   .sign(ca_key, hashes.SHA256()))
    return (certificate.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def write_lineage(state_dir, names, not_before=NOW, days=90, server=DIRECTORY):
    """certbot's files for the lineage, as certbot leaves them after an issuance."""
    cert, key = make_certificate(names, not_before, days)
    paths = acme.lineage_paths(str(state_dir))
    os.makedirs(os.path.dirname(paths["cert"]), exist_ok=True)
    os.makedirs(os.path.dirname(paths["renewal"]), exist_ok=True)
    Path(paths["cert"]).write_bytes(cert)
    Path(paths["fullchain"]).write_bytes(cert)  # the chain would follow; one certificate is enough here
    Path(paths["privkey"]).write_bytes(key)
    Path(paths["renewal"]).write_text(
        "# renew_before_expiry = 30 days\nversion = 4.0.0\narchive_dir = /var/lib/wtstack-acme/certbot/archive/"
        "wtstack\ncert = /var/lib/wtstack-acme/certbot/live/wtstack/cert.pem\n\n# Options used in the renewal "
        f"process\n[renewalparams]\naccount = 0123abcd\nauthenticator = standalone\nserver = {server}\n"
        "key_type = ecdsa\nhttp01_port = 8402\n")
    return cert + key


# --- the decision ---------------------------------------------------------------------------------

def described(names, not_before=NOW, days=90):
    return acme.describe_certificate(make_certificate(names, not_before, days)[0])


def test_describe_certificate_reads_names_expiry_and_serial():
    certificate = described(["www.example.org", "example.org"], days=90)
    assert certificate["names"] == ["example.org", "www.example.org"]
    assert certificate["not_after"] == "2027-02-27T12:00:00+00:00"
    assert certificate["issuer"] == "CN=Test Intermediate CA"
    assert int(certificate["serial"], 16) > 0


@pytest.mark.parametrize("certificate, directory, served, expected", [
    (None, None, None, ("issue", f"there is no certificate from {DIRECTORY} yet")),
    ("fresh", "https://acme-staging.example/directory", b"pem",
     ("issue", f"the certificate comes from https://acme-staging.example/directory, not {DIRECTORY}")),
    ("fresh", None, b"pem", ("issue", f"the certificate comes from an unknown CA, not {DIRECTORY}")),
    ("other names", DIRECTORY, b"pem",
     ("issue", "the certificate names example.org, not example.org, www.example.org")),
    ("due", DIRECTORY, b"pem",
     ("renew", "it expires on 2026-12-19 12:00 UTC, within the renewal window of 30 days")),
    ("expired", DIRECTORY, b"pem", ("renew", "it expired on 2026-11-28, within the renewal window of 30 days")),
    ("fresh", DIRECTORY, b"something else", ("install", "is not the certificate certbot holds")),
    ("fresh", DIRECTORY, None, ("install", "is not the certificate certbot holds")),
    ("fresh", DIRECTORY, b"pem", ("keep", "is valid until 2027-02-27 (90 days), renewal 30 days before")),
])
def test_decide(tmp_path, certificate, directory, served, expected):
    certificates = {"fresh": described(["example.org", "www.example.org"]),
                    "other names": described(["example.org"]),
                    "due": described(["example.org", "www.example.org"], NOW - datetime.timedelta(days=70)),
                    "expired": described(["example.org", "www.example.org"], NOW - datetime.timedelta(days=91))}
    action, reason = acme.decide(config(tmp_path), certificates.get(certificate), directory, served, b"pem", NOW)
    assert action == expected[0]
    assert expected[1] in reason


def test_the_renewal_window_is_inclusive_to_the_second(tmp_path):
    issued = described(["example.org", "www.example.org"], NOW - datetime.timedelta(days=60), days=90)
    assert acme.decide(config(tmp_path), issued, DIRECTORY, b"pem", b"pem", NOW)[0] == "renew"
    later = NOW - datetime.timedelta(seconds=1)
    assert acme.decide(config(tmp_path), issued, DIRECTORY, b"pem", b"pem", later)[0] == "keep"


def test_status_reads_certbots_files_and_the_served_pem(tmp_path):
    settings = config(tmp_path)
    assert acme.status(settings, str(tmp_path / "state"), NOW)["action"] == "issue"
    issued = write_lineage(tmp_path / "state", settings["names"])
    assert acme.status(settings, str(tmp_path / "state"), NOW)["action"] == "install"
    Path(settings["pem_path"]).parent.mkdir()
    Path(settings["pem_path"]).write_bytes(issued)
    result = acme.status(settings, str(tmp_path / "state"), NOW)
    assert result["action"] == "keep" and result["certificate"]["names"] == sorted(settings["names"])
    write_lineage(tmp_path / "state", settings["names"], server="https://other.example/dir")
    assert acme.status(settings, str(tmp_path / "state"), NOW)["action"] == "issue"


def test_issuing_directory_is_certbots_server_setting():
    assert acme.issuing_directory("version = 2.1.0\n[renewalparams]\nserver = https://a.example/dir\n") == \
        "https://a.example/dir"
    assert acme.issuing_directory("version = 2.1.0\n") is None
    assert acme.issuing_directory("not [ini\n") is None


# --- certbot --------------------------------------------------------------------------------------

def test_certbot_is_asked_for_the_names_with_its_own_state_and_the_challenge_port(tmp_path):
    command = acme.certbot_command(config(tmp_path), "/var/lib/wtstack-acme")
    assert command[:2] == ["certbot", "certonly"]
    pairs = dict(zip(command, command[1:]))
    assert pairs["--server"] == DIRECTORY
    assert pairs["--domains"] == "www.example.org,example.org"  # the first is the subject
    assert pairs["--http-01-address"] == "192.0.2.10" and pairs["--http-01-port"] == "8402"
    assert pairs["--config-dir"] == "/var/lib/wtstack-acme/certbot"  # not /etc/letsencrypt: certbot.timer's
    assert pairs["--cert-name"] == "wtstack" and pairs["--email"] == "ops@example.org"
    for flag in ("--non-interactive", "--agree-tos", "--force-renewal", "--standalone"):
        assert flag in command
    without_email = acme.certbot_command(config(tmp_path, email=None))
    assert "--register-unsafely-without-email" in without_email and "--email" not in without_email


def test_a_private_directory_ca_is_what_certbot_trusts(tmp_path):
    assert acme.certbot_environment(config(tmp_path, directory_ca_file="/etc/wtstack-acme/directory-ca.pem"))[
        "REQUESTS_CA_BUNDLE"] == "/etc/wtstack-acme/directory-ca.pem"
    assert acme.certbot_environment(config(tmp_path)).get("REQUESTS_CA_BUNDLE") == os.environ.get(
        "REQUESTS_CA_BUNDLE")


def test_certbots_failure_is_reported_with_the_cas_words_and_without_its_noise():
    assert acme.certbot_error(CERTBOT_STDOUT, CERTBOT_STDERR) == (
        "Certbot failed to authenticate some domains (authenticator: standalone). The Certificate Authority reported "
        "these problems: Domain: wtstack.test Type: connection Detail: Get \"http://wtstack.test:80/.well-known/"
        "acme-challenge/GB42\": dial tcp 127.0.11.241:80: connect: connection refused Some challenges have failed")
    assert acme.certbot_error("", "") == "certbot printed nothing"


def test_renew_without_certbot_fails_saying_so_and_touches_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    settings = config(tmp_path)
    with pytest.raises(acme.Failure, match="certbot is not installed"):
        acme.renew(settings, str(tmp_path / "state"), NOW, lock_path=str(tmp_path / "lock"))
    assert not Path(settings["pem_path"]).exists()


# --- installing for HAProxy -------------------------------------------------------------------------

needs_haproxy = pytest.mark.skipif(not shutil.which("haproxy"),
                                   reason="missing tool: haproxy is not installed (apt-get install haproxy)")


@needs_haproxy
def test_verify_accepts_a_certificate_with_its_key_and_refuses_others(tmp_path):
    cert, key = make_certificate(["example.org"], NOW - datetime.timedelta(days=1), 90)
    good, mismatched, keyless = (tmp_path / name for name in ("good.pem", "mismatched.pem", "keyless.pem"))
    good.write_bytes(cert + key)
    mismatched.write_bytes(cert + make_certificate(["example.org"], NOW, 90)[1])
    keyless.write_bytes(cert)
    acme.verify_pem(str(good))
    for pem in (mismatched, keyless):
        with pytest.raises(acme.Failure, match=f"HAProxy cannot load {pem} as a certificate with its key: .+"):
            acme.verify_pem(str(pem))
    assert acme.main(["verify", str(good)]) == 0
    assert acme.main(["verify", str(keyless)]) == 1


@needs_haproxy
def test_renew_installs_certbots_certificate_checked_by_haproxy_and_private(tmp_path, capsys):
    settings = config(tmp_path)
    state = str(tmp_path / "state")
    issued = write_lineage(state, settings["names"], not_before=datetime.datetime.now(datetime.timezone.utc))
    (tmp_path / "haproxy.cfg").write_text(
        f"defaults\n    mode http\n    timeout client 1s\n    timeout server 1s\n    timeout connect 1s\n"
        f"frontend f\n    bind 127.0.0.1:1 ssl crt {settings['pem_path']}\n")
    # No certbot run: its certificate is fresh, only HAProxy's file is not it (a run killed before it was copied).
    result = acme.renew(settings, state, lock_path=str(tmp_path / "lock"))
    assert result["action"] == "install" and result["changed"] is True
    assert Path(settings["pem_path"]).read_bytes() == issued
    assert stat.S_IMODE(os.stat(settings["pem_path"]).st_mode) == 0o600
    assert acme.renew(settings, state, lock_path=str(tmp_path / "lock")) == {
        **acme.status(settings, state), "changed": False}
    assert not [name for name in os.listdir(tmp_path / "tls") if name.startswith(".wtstack-acme.")]

    # A file HAProxy cannot load is refused before it replaces the one in service.
    paths = acme.lineage_paths(state)
    Path(paths["privkey"]).write_bytes(make_certificate(["example.org"], NOW, 90)[1])
    with pytest.raises(acme.Failure, match="HAProxy cannot load"):
        acme.renew(settings, state, lock_path=str(tmp_path / "lock"))
    assert Path(settings["pem_path"]).read_bytes() == issued


def test_main_prints_the_decision_as_json_and_a_line_for_the_journal(tmp_path, capsys):
    path = tmp_path / "wtstack-acme.json"
    path.write_text(json.dumps(config(tmp_path)))
    assert acme.main(["--config", str(path), "status"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["action"] == "issue"
    assert err.startswith("wtstack-acme: issue: there is no certificate from")


def test_main_fails_in_one_sentence_without_settings(tmp_path, capsys):
    assert acme.main(["--config", str(tmp_path / "missing.json"), "status"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == {"failed": True, "msg": f"{tmp_path / 'missing.json'} is missing: this load balancer "
                               "does not issue the ACME certificate (haproxy_tls_acme_host names the one that does)"}
