# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A load balancer's role variables checked beyond their types: settings that depend on each other,
and what `haproxy -c` accepts but would take the fleet down (a check URI without '/' marks every
instance down).

Plain Python with no Ansible import: the role_checks action is its adapter, and
roles/haproxy/tasks/validate.yml runs it for every load balancer, on the controller, before any host
is contacted. The argument spec has checked the types but converted nothing (an extra var "8080" is a
string), so values are read as Ansible's int, float and bool filters read them, and printed as
Ansible prints them in a message (None as nothing). No message carries haproxy_stats_password.
"""

from __future__ import annotations

import json
import os
import re

# The balancers share one ACME certificate, and the issuing balancer's tasks may read these from any of them.
ACME_SHARED_SETTINGS = (
    "haproxy_tls_acme", "haproxy_tls_acme_host", "haproxy_tls_acme_names", "haproxy_tls_acme_directory_url",
    "haproxy_tls_acme_directory_ca_file", "haproxy_tls_acme_email", "haproxy_tls_acme_renew_days",
    "haproxy_tls_acme_challenge_address", "haproxy_tls_acme_challenge_port", "haproxy_tls_acme_renew_on_calendar",
    "haproxy_tls_pem_path",
)
# Counts of checks: each at least 1.
CHECK_COUNTS = ("haproxy_check_fall", "haproxy_check_rise", "haproxy_vrrp_check_interval",
                "haproxy_vrrp_check_fall", "haproxy_vrrp_check_rise")
# Every variable settings_problems() reads (the role_checks action passes exactly these).
SETTINGS = tuple(dict.fromkeys(
    ("haproxy_bind_port", "haproxy_check_uri") + CHECK_COUNTS + ("haproxy_vrrp_advert_interval",)
    + ACME_SHARED_SETTINGS
    + ("haproxy_tls_enabled", "haproxy_tls_port", "haproxy_tls_self_signed", "haproxy_tls_self_signed_names",
       "haproxy_tls_redirect", "haproxy_hsts_max_age", "haproxy_stats_enabled", "haproxy_stats_bind_address",
       "haproxy_stats_port", "haproxy_stats_uri", "haproxy_stats_user", "haproxy_stats_password")))

# A name an ACME CA can validate over HTTP-01: fully qualified, no wildcard, not an IP address.
ACME_NAME = re.compile(r"(?i)^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+$")
STATS_USER = re.compile(r"^[A-Za-z0-9._-]+$")
# VRRPv3 carries the advertisement interval in centiseconds, in 12 bits.
VRRP_ADVERT_INTERVAL = (0.01, 40.95)


class SettingsError(Exception):
    """The settings given are not the ones this module checks (a caller's mistake, not the user's)."""


def as_int(value):
    """Ansible's (Jinja's) `int` filter: "42.23" is 42, anything it cannot read 0."""
    try:
        return int(value, 10) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            return 0


def as_float(value):
    """Ansible's (Jinja's) `float` filter: anything it cannot read is 0.0."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def as_bool(value):
    """Ansible's `bool` filter: true for True, 1, and 'yes', 'on', '1', 'true' in any case."""
    if isinstance(value, str):
        return value.lower() in ("yes", "on", "1", "true")
    return value is not None and value == 1


def as_text(value):
    """A value as Ansible prints it inside a message: None as nothing."""
    return "" if value is None else str(value)


def _length(value):
    return 0 if value is None else len(value)


def settings_problems(host, settings, lb_hosts, hostvars, is_file=os.path.isfile):
    """Every problem of this load balancer's settings, each `host: variable: problem; fix`.

    settings: every name of SETTINGS to its value. lb_hosts: the fleet's load balancers. hostvars:
    host -> its variables (Ansible's hostvars); read for the ACME issuer (haproxy_tls_acme_host, when it
    is another load balancer) only, and of its variables only haproxy_tls_acme and, when this balancer
    or the issuer asks for ACME certificates, the ACME settings (each of which Ansible templates when
    read). is_file: a path test on the controller.
    """
    missing = [name for name in SETTINGS if name not in settings]
    if missing:
        raise SettingsError(f"settings lacks {', '.join(missing)}")
    issuer_host = settings["haproxy_tls_acme_host"]
    # The issuer compared with itself differs in nothing.
    issuer = hostvars[issuer_host] if _is_one_of(issuer_host, lb_hosts) and issuer_host != host else None
    found = (_frontend_problems(settings) + _acme_problems(settings, lb_hosts, is_file)
             + _shared_acme_problems(settings, issuer) + _tls_problems(settings) + _stats_problems(settings))
    return [f"{host}: {variable}: {message}" for variable, message in found]


def _frontend_problems(s):
    problems = []
    if not 1 <= as_int(s["haproxy_bind_port"]) <= 65535:
        problems.append(("haproxy_bind_port",
                         f"{as_text(s['haproxy_bind_port'])} is out of range; give a port from 1 to 65535."))
    if not re.match(r"/[^\s]*$", as_text(s["haproxy_check_uri"])):
        problems.append(("haproxy_check_uri", f"{json.dumps(s['haproxy_check_uri'])} is not a URL path; give one "
                                              "that starts with '/' and has no spaces, such as /health."))
    problems += [(name, f"{as_text(s[name])} is below 1; give 1 or more.")
                 for name in CHECK_COUNTS if as_int(s[name]) < 1]
    lowest, highest = VRRP_ADVERT_INTERVAL
    if not lowest <= as_float(s["haproxy_vrrp_advert_interval"]) <= highest:
        problems.append(("haproxy_vrrp_advert_interval",
                         f"{as_text(s['haproxy_vrrp_advert_interval'])} is out of range; give seconds from "
                         f"{lowest} to {highest} (VRRPv3)."))
    return problems


def _acme_problems(s, lb_hosts, is_file):
    tls, acme = as_bool(s["haproxy_tls_enabled"]), as_bool(s["haproxy_tls_acme"])
    problems = []
    if acme and not tls:
        problems.append(("haproxy_tls_acme", "an ACME certificate is for TLS; set haproxy_tls_enabled to true, "
                                             "or haproxy_tls_acme to false."))
    if acme and as_bool(s["haproxy_tls_self_signed"]):
        problems.append(("haproxy_tls_self_signed", "contradicts haproxy_tls_acme (the certificate comes from the "
                                                    "CA); set one of them to false."))
    if not (tls and acme):
        return problems
    names, email, url = s["haproxy_tls_acme_names"], s["haproxy_tls_acme_email"], s["haproxy_tls_acme_directory_url"]
    ca_file, issuer_host = s["haproxy_tls_acme_directory_ca_file"], s["haproxy_tls_acme_host"]
    port = s["haproxy_tls_acme_challenge_port"]
    bad_names = [str(name) for name in names or () if not ACME_NAME.match(str(name))]
    if _length(names) == 0:
        problems.append(("haproxy_tls_acme_names",
                         "is empty; give the DNS names clients use, each resolving to your load balancers."))
    if bad_names:
        problems.append(("haproxy_tls_acme_names", f"{', '.join(bad_names)} cannot be validated over HTTP-01; give "
                                                   "fully qualified DNS names, without wildcards, not IP addresses."))
    if not email and not ca_file:
        problems.append(("haproxy_tls_acme_email",
                         f"is required for a public CA ({as_text(url)}); give an address at which the CA can tell "
                         "you about your certificates (revocations, changes of its terms)."))
    if email is not None and not EMAIL.match(as_text(email)):
        problems.append(("haproxy_tls_acme_email", f"'{as_text(email)}' is not an e-mail address."))
    if not re.match(r"https://[^ ]+$", str(url)):
        problems.append(("haproxy_tls_acme_directory_url",
                         f"'{as_text(url)}' is not an https:// URL; give the CA's ACME directory URL."))
    if ca_file and not is_file(ca_file):
        problems.append(("haproxy_tls_acme_directory_ca_file",
                         f"{as_text(ca_file)} is not a file on the controller; give the PEM file of the CA that "
                         "signs the directory's HTTPS certificate, or leave it unset to trust the system's CAs."))
    if as_int(s["haproxy_tls_acme_renew_days"]) < 1:
        problems.append(("haproxy_tls_acme_renew_days",
                         f"{as_text(s['haproxy_tls_acme_renew_days'])} is below 1; give days before expiry (30 for "
                         "Let's Encrypt's 90-day certificates)."))
    if not _is_one_of(issuer_host, lb_hosts):
        problems.append(("haproxy_tls_acme_host",
                         f"'{as_text(issuer_host)}' is not one of the load balancers ({', '.join(lb_hosts)}); name the "
                         "one that asks the CA for the certificate."))
    if as_int(port) in _haproxy_ports(s) or not 1 <= as_int(port) <= 65535:
        problems.append(("haproxy_tls_acme_challenge_port",
                         f"{as_text(port)} is out of range or already a port of HAProxy; give certbot a free port of "
                         "its own (8402)."))
    return problems


def _is_one_of(value, names):
    return isinstance(value, str) and value in names


def _haproxy_ports(s):
    """The ports HAProxy listens on besides the ACME challenge's (the TLS port whether or not TLS is on)."""
    ports = {as_int(s["haproxy_bind_port"]), as_int(s["haproxy_tls_port"])}
    if as_bool(s["haproxy_stats_enabled"]):
        ports.add(as_int(s["haproxy_stats_port"]))
    return ports


def acme_settings_differing(settings, issuer):
    """The ACME settings this balancer has otherwise than the issuer (compared as text; one the issuer
    does not set counts as this balancer's)."""
    return [name for name in ACME_SHARED_SETTINGS
            if str(issuer[name] if name in issuer else settings[name]) != str(settings[name])]


def _shared_acme_problems(s, issuer):
    if issuer is None or not (as_bool(s["haproxy_tls_acme"]) or as_bool(issuer.get("haproxy_tls_acme"))):
        return []
    differing = acme_settings_differing(s, issuer)
    if not differing:
        return []
    return [(", ".join(differing),
             f"differ from {as_text(s['haproxy_tls_acme_host'])}'s, which asks the CA for the one certificate every "
             "load balancer serves; give every load balancer the same ACME settings (group_vars of the load "
             "balancer group).")]


def _tls_problems(s):
    tls, hsts = as_bool(s["haproxy_tls_enabled"]), s["haproxy_hsts_max_age"]
    problems = []
    if not tls and as_bool(s["haproxy_tls_redirect"]):
        problems.append(("haproxy_tls_redirect",
                         "redirecting to https needs TLS; set haproxy_tls_enabled to true or drop the redirect."))
    if not tls and hsts is not None:
        problems.append(("haproxy_hsts_max_age", "HSTS is sent only over TLS; set haproxy_tls_enabled to true or "
                                                 "leave haproxy_hsts_max_age unset."))
    if hsts is not None and as_int(hsts) < 0:
        problems.append(("haproxy_hsts_max_age", f"{as_text(hsts)} is negative; give seconds (31536000 is a year)."))
    if not tls:
        return problems
    if as_int(s["haproxy_tls_port"]) == as_int(s["haproxy_bind_port"]):
        problems.append(("haproxy_tls_port", f"{as_text(s['haproxy_tls_port'])} is also haproxy_bind_port; give TLS "
                                             "its own port (443)."))
    if not re.match("/", str(s["haproxy_tls_pem_path"] or "")):
        problems.append(("haproxy_tls_pem_path",
                         f"{as_text(s['haproxy_tls_pem_path'])} is not an absolute path; give the absolute path of the "
                         "PEM file (certificate chain and private key) on the load balancer."))
    if as_bool(s["haproxy_tls_self_signed"]) and _length(s["haproxy_tls_self_signed_names"]) == 0:
        problems.append(("haproxy_tls_self_signed_names",
                         "is empty; give at least the name or address clients use for this load balancer."))
    return problems


def _stats_problems(s):
    if not as_bool(s["haproxy_stats_enabled"]):
        return []
    problems = []
    if not as_text(s["haproxy_stats_bind_address"] or ""):
        problems.append(("haproxy_stats_bind_address", "is required with haproxy_stats_enabled; give the (internal) "
                                                       "address the statistics page should listen on."))
    if not as_text(s["haproxy_stats_password"] or ""):
        problems.append(("haproxy_stats_password",
                         "is required with haproxy_stats_enabled; give a secret (from Ansible Vault, say)."))
    if not STATS_USER.match(str(s["haproxy_stats_user"])):
        problems.append(("haproxy_stats_user", f"'{as_text(s['haproxy_stats_user'])}' is not a usable user name; use "
                                               "letters, digits, '.', '_' and '-'."))
    port, tls = as_int(s["haproxy_stats_port"]), as_bool(s["haproxy_tls_enabled"])
    if port == as_int(s["haproxy_bind_port"]) or (tls and port == as_int(s["haproxy_tls_port"])):
        problems.append(("haproxy_stats_port", f"{as_text(s['haproxy_stats_port'])} is already the port of the wt "
                                               "frontend; give the statistics page its own."))
    uri = str(s["haproxy_stats_uri"])
    if not uri.startswith("/") or uri == "/metrics":
        problems.append(("haproxy_stats_uri", f"{as_text(s['haproxy_stats_uri'])} must start with / and not be "
                                              "/metrics (the Prometheus exporter's path)."))
    return problems
