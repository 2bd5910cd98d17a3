# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""wtstack-acme: keeps HAProxy's ACME certificate on the issuing load balancer issued, fresh and in service.

The wtstack.fleet.haproxy role installs this program on every load balancer (haproxy_tls_acme) as
/usr/local/lib/wtstack-acme/wtstack_acme.py, with /usr/local/sbin/wtstack-acme to run it, and its
settings in /etc/wtstack-acme/wtstack-acme.json on the issuing balancer (haproxy_tls_acme_host).

    wtstack-acme status        what `renew` would do and why, as JSON; asks nothing of the CA
    wtstack-acme renew         do it: ask the CA through certbot when the certificate is missing, names
                               other hosts, comes from another CA or expires within the renewal window;
                               then install it for HAProxy, check it and reload HAProxy
    wtstack-acme verify PEM    exit 0 if HAProxy loads PEM (chain and key) as a certificate

certbot speaks ACME (account, order, HTTP-01 challenge on its own small web server, which every
balancer's HAProxy forwards /.well-known/acme-challenge/ to); this program decides when to ask it and
puts the result in service. The role runs `status` and `renew` on every site.yml run and copies the
result to the other balancers; wtstack-acme-renew.timer runs `renew` twice a day. Both paths take the
same decision, here. A failure leaves the certificate in service untouched and says what the CA said.

Only the standard library and python3-cryptography (a dependency of certbot) are needed; `verify`
needs neither, only haproxy.
"""

import argparse
import configparser
import contextlib
import datetime
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time

CONFIG_PATH = "/etc/wtstack-acme/wtstack-acme.json"
STATE_DIR = "/var/lib/wtstack-acme"
LOG_DIR = "/var/log/wtstack-acme"
LOCK_PATH = "/run/lock/wtstack-acme.lock"
LOCK_TIMEOUT = 900  # another run (the timer, or site.yml) holds the lock at most this long
CERT_NAME = "wtstack"  # certbot's name for the lineage
DAY = 86400


class Failure(Exception):
    """Something the operator must act on; the message is what they see, in one sentence or two."""


# --------------------------------------------------------------------------- settings and certbot's files

def load_config(path=CONFIG_PATH):
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except FileNotFoundError:
        raise Failure(f"{path} is missing: this load balancer does not issue the ACME certificate "
                      "(haproxy_tls_acme_host names the one that does)") from None
    except ValueError as error:
        raise Failure(f"{path} is not valid JSON ({error}); run site.yml to rewrite it") from None
    missing = [key for key in ("names", "directory_url", "renew_days", "challenge_address", "challenge_port",
                               "pem_path") if key not in config]
    if missing:
        raise Failure(f"{path} lacks {', '.join(missing)}; run site.yml to rewrite it")
    return config


def certbot_dirs(state_dir=STATE_DIR):
    """certbot's own trees, apart from /etc/letsencrypt: Debian's certbot.timer renews what is there
    (your other certificates, if any) and never this one, whose renewal this program decides."""
    return {"config": os.path.join(state_dir, "certbot"), "work": os.path.join(state_dir, "work"),
            "logs": LOG_DIR}


def lineage_paths(state_dir=STATE_DIR):
    live = os.path.join(certbot_dirs(state_dir)["config"], "live", CERT_NAME)
    return {"cert": os.path.join(live, "cert.pem"), "fullchain": os.path.join(live, "fullchain.pem"),
            "privkey": os.path.join(live, "privkey.pem"),
            "renewal": os.path.join(certbot_dirs(state_dir)["config"], "renewal", CERT_NAME + ".conf")}


def read_bytes(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def issuing_directory(renewal_conf_text):
    """The ACME directory certbot got the lineage from: `server` in its renewal configuration
    (ConfigObj syntax: top-level keys, then [renewalparams]). None if it does not say."""
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string("[lineage]\n" + renewal_conf_text)
    except configparser.Error:
        return None
    return parser.get("renewalparams", "server", fallback=None)


# --------------------------------------------------------------------------- certificates

def describe_certificate(pem):
    """What the decision needs of a PEM certificate: its DNS names, expiry, serial and issuer."""
    from cryptography import x509  # only the issuing balancer, where certbot brings it, needs it

    cert = x509.load_pem_x509_certificate(pem)
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    not_after = getattr(cert, "not_valid_after_utc", None)
    if not_after is None:  # cryptography < 42 (Debian 12): naive UTC
        not_after = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    not_before = getattr(cert, "not_valid_before_utc", None)
    if not_before is None:
        not_before = cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)
    return {"names": sorted(names), "not_after": not_after.isoformat(), "not_before": not_before.isoformat(),
            "serial": format(cert.serial_number, "x"), "issuer": cert.issuer.rfc4514_string()}


def decide(config, certificate, directory, served_pem, issued_pem, now):
    """(action, reason): what `renew` must do. Pure: the caller reads the files.

    certificate: describe_certificate() of certbot's current certificate, or None if it has none;
    directory: the ACME directory that issued it (None if unknown); served_pem / issued_pem: the PEM
    HAProxy loads and the one certbot's files make (chain + key), bytes or None.
    Actions: "issue" (a new certificate is needed), "renew" (the same names, due), "install" (certbot's
    certificate is fine but HAProxy's file is not it), "keep".
    """
    wanted = sorted(config["names"])
    if certificate is None:
        return "issue", f"there is no certificate from {config['directory_url']} yet"
    if directory != config["directory_url"]:
        return "issue", f"the certificate comes from {directory or 'an unknown CA'}, not {config['directory_url']}"
    if certificate["names"] != wanted:
        return "issue", f"the certificate names {', '.join(certificate['names'])}, not {', '.join(wanted)}"
    not_after = datetime.datetime.fromisoformat(certificate["not_after"])
    left = (not_after - now).total_seconds()
    if left <= config["renew_days"] * DAY:
        when = f"expired on {not_after:%Y-%m-%d}" if left <= 0 else f"expires on {not_after:%Y-%m-%d %H:%M} UTC"
        return "renew", f"it {when}, within the renewal window of {config['renew_days']} days"
    if served_pem != issued_pem:
        return "install", f"{config['pem_path']} is not the certificate certbot holds (serial {certificate['serial']})"
    return "keep", (f"serial {certificate['serial']} is valid until {not_after:%Y-%m-%d} ({int(left // DAY)} days), "
                    f"renewal {config['renew_days']} days before")


# --------------------------------------------------------------------------- certbot

def certbot_command(config, state_dir=STATE_DIR):
    """certbot certonly for the configured names, answering HTTP-01 on challenge_address:challenge_port
    (where every balancer's HAProxy forwards the CA's requests). --force-renewal: the decision is ours."""
    dirs = certbot_dirs(state_dir)
    command = ["certbot", "certonly", "--non-interactive", "--agree-tos", "--no-eff-email",
               "--config-dir", dirs["config"], "--work-dir", dirs["work"], "--logs-dir", dirs["logs"],
               "--server", config["directory_url"], "--cert-name", CERT_NAME, "--force-renewal",
               "--standalone", "--preferred-challenges", "http-01",
               "--http-01-address", config["challenge_address"], "--http-01-port", str(config["challenge_port"]),
               "--key-type", "ecdsa", "--elliptic-curve", "secp256r1", "--domains", ",".join(config["names"])]
    if config.get("email"):
        command += ["--email", config["email"]]
    else:
        command += ["--register-unsafely-without-email"]
    return command


def certbot_environment(config):
    environment = dict(os.environ)
    if config.get("directory_ca_file"):
        # certbot talks to the directory through python3-requests, which trusts this bundle instead of the
        # system's: a private CA's directory (an internal CA, a test CA) is served under its own root.
        environment["REQUESTS_CA_BUNDLE"] = config["directory_ca_file"]
    return environment


def certbot_error(stdout, stderr):
    """certbot's account of a failure, which quotes the CA (its problem type and detail), without what
    only points at certbot's log or forum, says what it was doing, or hints at a setup (names pointing
    at the machine certbot runs on) that is not this one: here the names point at the load balancers."""
    noise = ("Saving debug log to", "Ask for help or search for solutions", "See the logfile",
             "re-run Certbot with -v", "Requesting a certificate for", "Renewing an existing certificate for",
             "Hint:")
    lines = [line for line in (stdout + "\n" + stderr).splitlines()
             if line.strip() and not any(marker in line for marker in noise)]
    return " ".join(" ".join(line.split()) for line in lines).rstrip(".") or "certbot printed nothing"


def run_certbot(config, state_dir=STATE_DIR):
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    try:
        result = subprocess.run(certbot_command(config, state_dir), env=certbot_environment(config),
                                capture_output=True, text=True, timeout=600, check=False)
    except FileNotFoundError:
        raise Failure("certbot is not installed; run site.yml, which installs it on the issuing balancer") from None
    except subprocess.TimeoutExpired:
        raise Failure(f"certbot did not finish within 10 minutes talking to {config['directory_url']}") from None
    if result.returncode != 0:
        raise Failure(f"certbot could not get a certificate for {', '.join(config['names'])} from "
                      f"{config['directory_url']}: {certbot_error(result.stdout, result.stderr)}")


# --------------------------------------------------------------------------- HAProxy

VERIFY_CONFIG = """\
global
    log stderr local0 emerg
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
frontend wtstack-acme-verify
    bind 127.0.0.1:1 ssl crt {pem}
"""


def verify_pem(pem_path):
    """HAProxy's own verdict on a certificate file: `haproxy -c` of a configuration that only loads it
    (a missing key, a key of another certificate, a broken chain or no certificate at all fail)."""
    with tempfile.TemporaryDirectory(prefix="wtstack-acme-verify.") as scratch:
        config = os.path.join(scratch, "verify.cfg")
        with open(config, "w", encoding="utf-8") as handle:
            handle.write(VERIFY_CONFIG.format(pem=pem_path))
        result = subprocess.run(["haproxy", "-c", "-f", config], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise Failure(f"HAProxy cannot load {pem_path} as a certificate with its key: "
                      f"{' '.join((result.stdout + result.stderr).split())}")


def write_private(path, content):
    """Replace `path` by `content` in one rename, readable by root only (HAProxy reads it as root)."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    handle, staged = tempfile.mkstemp(dir=directory, prefix=".wtstack-acme.")
    try:
        with os.fdopen(handle, "wb") as staged_file:
            staged_file.write(content)
            staged_file.flush()
            os.fsync(staged_file.fileno())
        return staged
    except BaseException:
        os.unlink(staged)
        raise


def install(config, content):
    """Put `content` in service as config["pem_path"]: checked alone, then with the whole live
    configuration (`haproxy -c`), which must accept it or the previous file is put back; then a
    hitless reload. Returns False if the file already held it."""
    pem_path = config["pem_path"]
    previous = read_bytes(pem_path)
    if previous == content:
        return False
    staged = write_private(pem_path, content)
    try:
        verify_pem(staged)
        os.replace(staged, pem_path)
    finally:
        if os.path.exists(staged):
            os.unlink(staged)
    haproxy_config = config.get("haproxy_config", "/etc/haproxy/haproxy.cfg")
    if os.path.exists(haproxy_config):
        check = subprocess.run(["haproxy", "-c", "-f", haproxy_config], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            if previous is not None:
                os.replace(write_private(pem_path, previous), pem_path)
            raise Failure(f"HAProxy refuses {haproxy_config} with the new certificate, so the previous one is back "
                          f"in {pem_path}: {' '.join((check.stdout + check.stderr).split())}")
    # A stopped HAProxy loads the file when it starts; a running one, on a reload, without a dropped connection.
    service = config.get("haproxy_service", "haproxy")
    active = subprocess.run(["systemctl", "is-active", "--quiet", service], check=False)
    if active.returncode == 0:
        reload = subprocess.run(["systemctl", "reload", service], capture_output=True, text=True, check=False)
        if reload.returncode != 0:
            raise Failure(f"{pem_path} holds the new certificate but `systemctl reload {service}` failed: "
                          f"{' '.join((reload.stdout + reload.stderr).split())}")
    return True


# --------------------------------------------------------------------------- the commands

def current_state(config, state_dir=STATE_DIR):
    paths = lineage_paths(state_dir)
    cert_pem, fullchain, privkey = (read_bytes(paths[name]) for name in ("cert", "fullchain", "privkey"))
    complete = cert_pem is not None and fullchain is not None and privkey is not None
    certificate = describe_certificate(cert_pem) if complete else None
    renewal = read_bytes(paths["renewal"])
    directory = issuing_directory(renewal.decode("utf-8", "replace")) if renewal is not None else None
    issued_pem = fullchain + privkey if complete else None
    return certificate, directory, issued_pem


def status(config, state_dir=STATE_DIR, now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    certificate, directory, issued_pem = current_state(config, state_dir)
    action, reason = decide(config, certificate, directory, read_bytes(config["pem_path"]), issued_pem, now)
    return {"action": action, "reason": reason, "certificate": certificate}


@contextlib.contextmanager
def exclusive(lock_path=None, timeout=LOCK_TIMEOUT):
    """One run at a time (the timer and site.yml may meet); the second waits, then decides afresh."""
    lock_path = lock_path or LOCK_PATH
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    with open(lock_path, "w", encoding="utf-8") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Failure(f"another wtstack-acme run has held {lock_path} for {timeout} s; "
                                  "see `journalctl -u wtstack-acme-renew`") from None
                time.sleep(1)
        yield


def renew(config, state_dir=STATE_DIR, now=None, lock_path=None):
    with exclusive(lock_path):
        decision = status(config, state_dir, now)
        if decision["action"] in ("issue", "renew"):
            run_certbot(config, state_dir)
        if decision["action"] == "keep":
            return {**decision, "changed": False}
        certificate, dummy, issued_pem = current_state(config, state_dir)
        if issued_pem is None:
            raise Failure(f"certbot reported success but {lineage_paths(state_dir)['fullchain']} is missing")
        installed = install(config, issued_pem)
        result = {**decision, "certificate": certificate, "changed": decision["action"] != "install" or installed}
        lifetime = (datetime.datetime.fromisoformat(certificate["not_after"])
                    - datetime.datetime.fromisoformat(certificate["not_before"])).total_seconds()
        if lifetime <= config["renew_days"] * DAY:
            result["warning"] = (f"the new certificate is valid for {lifetime / DAY:.0f} days, no longer than the "
                                 f"renewal window of {config['renew_days']} days: every run will renew it; make the "
                                 "window shorter")
        return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="wtstack-acme", description=__doc__.split("\n\n", maxsplit=1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="what `renew` would do and why (JSON); asks nothing of the CA")
    commands.add_parser("renew", help="issue or renew if due, install for HAProxy, reload it (JSON)")
    verify = commands.add_parser("verify", help="exit 0 if HAProxy loads PEM as a certificate with its key")
    verify.add_argument("pem")
    parser.add_argument("--config", default=CONFIG_PATH, help=f"settings (default {CONFIG_PATH})")
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "verify":
            verify_pem(arguments.pem)
            return 0
        config = load_config(arguments.config)
        result = status(config) if arguments.command == "status" else renew(config)
    except Failure as failure:
        print(json.dumps({"failed": True, "msg": str(failure)}))
        print(f"wtstack-acme: {failure}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    done = "" if arguments.command == "status" else (" (done)" if result["changed"] else " (nothing to do)")
    print(f"wtstack-acme: {result['action']}: {result['reason']}{done}", file=sys.stderr)
    if result.get("warning"):
        print(f"wtstack-acme: warning: {result['warning']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
