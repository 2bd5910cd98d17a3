"""A load balancer's role variables checked beyond their types: every message, word for word, as
tests/bad_inputs.py and tests/integration/test_plan.py find them in a playbook's output."""

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_settings import (
    ACME_SHARED_SETTINGS,
    SETTINGS,
    SettingsError,
    acme_settings_differing,
    as_bool,
    as_float,
    as_int,
    settings_problems,
)

LB_HOSTS = ["lb1", "lb2"]
# The role's defaults (roles/haproxy/defaults/main.yml), as Ansible templates them for lb1.
DEFAULTS = {
    "haproxy_bind_port": 80, "haproxy_check_uri": "/health", "haproxy_check_fall": 2, "haproxy_check_rise": 2,
    "haproxy_vrrp_check_interval": 1, "haproxy_vrrp_check_fall": 2, "haproxy_vrrp_check_rise": 2,
    "haproxy_vrrp_advert_interval": 1, "haproxy_tls_acme": False, "haproxy_tls_acme_host": "lb1",
    "haproxy_tls_acme_names": [], "haproxy_tls_acme_directory_url": "https://acme-v02.api.letsencrypt.org/directory",
    "haproxy_tls_acme_directory_ca_file": None, "haproxy_tls_acme_email": None, "haproxy_tls_acme_renew_days": 30,
    "haproxy_tls_acme_challenge_address": "198.51.100.10", "haproxy_tls_acme_challenge_port": 8402,
    "haproxy_tls_acme_renew_on_calendar": "*-*-* 00,12:00:00", "haproxy_tls_pem_path": "/etc/haproxy/tls/wtstack.pem",
    "haproxy_tls_enabled": False, "haproxy_tls_port": 443, "haproxy_tls_self_signed": False,
    "haproxy_tls_self_signed_names": ["lb1", "198.51.100.10"], "haproxy_tls_redirect": False,
    "haproxy_hsts_max_age": None, "haproxy_stats_enabled": False, "haproxy_stats_bind_address": None,
    "haproxy_stats_port": 8404, "haproxy_stats_uri": "/stats", "haproxy_stats_user": "stats",
    "haproxy_stats_password": None,
}
ACME = {"haproxy_tls_enabled": True, "haproxy_tls_acme": True, "haproxy_tls_acme_names": ["www.example.com"],
        "haproxy_tls_acme_email": "ops@example.com"}
STATS = {"haproxy_stats_enabled": True, "haproxy_stats_bind_address": "10.0.0.1", "haproxy_stats_password": "s3cret"}


def problems(host="lb1", hostvars=None, is_file=lambda path: False, **overrides):
    return settings_problems(host, {**DEFAULTS, **overrides}, LB_HOSTS, hostvars or {}, is_file=is_file)


def test_the_defaults_are_consistent():
    assert problems() == []


def test_the_defaults_here_cover_every_setting_checked():
    assert set(DEFAULTS) == set(SETTINGS)


@pytest.mark.parametrize("overrides, expected", [
    ({"haproxy_bind_port": 70000}, "lb1: haproxy_bind_port: 70000 is out of range; give a port from 1 to 65535."),
    ({"haproxy_bind_port": 0}, "lb1: haproxy_bind_port: 0 is out of range; give a port from 1 to 65535."),
    ({"haproxy_check_uri": "health"}, "lb1: haproxy_check_uri: \"health\" is not a URL path; give one that starts "
                                      "with '/' and has no spaces, such as /health."),
    ({"haproxy_check_uri": "/he alth"}, "lb1: haproxy_check_uri: \"/he alth\" is not a URL path; give one that starts "
                                        "with '/' and has no spaces, such as /health."),
    ({"haproxy_check_fall": 0}, "lb1: haproxy_check_fall: 0 is below 1; give 1 or more."),
    ({"haproxy_vrrp_check_rise": "0"}, "lb1: haproxy_vrrp_check_rise: 0 is below 1; give 1 or more."),
    ({"haproxy_vrrp_advert_interval": 0.001}, "lb1: haproxy_vrrp_advert_interval: 0.001 is out of range; give "
                                              "seconds from 0.01 to 40.95 (VRRPv3)."),
    ({"haproxy_vrrp_advert_interval": 41}, "lb1: haproxy_vrrp_advert_interval: 41 is out of range; give seconds "
                                           "from 0.01 to 40.95 (VRRPv3)."),
    ({"haproxy_tls_acme": True}, "lb1: haproxy_tls_acme: an ACME certificate is for TLS; set haproxy_tls_enabled "
                                 "to true, or haproxy_tls_acme to false."),
    ({**ACME, "haproxy_tls_self_signed": True}, "lb1: haproxy_tls_self_signed: contradicts haproxy_tls_acme (the "
                                                "certificate comes from the CA); set one of them to false."),
    ({**ACME, "haproxy_tls_acme_names": []}, "lb1: haproxy_tls_acme_names: is empty; give the DNS names clients "
                                             "use, each resolving to your load balancers."),
    ({**ACME, "haproxy_tls_acme_names": ["*.example.com", "198.51.100.10", "www.example.com", "localhost"]},
     "lb1: haproxy_tls_acme_names: *.example.com, 198.51.100.10, localhost cannot be validated over HTTP-01; "
     "give fully qualified DNS names, without wildcards, not IP addresses."),
    ({**ACME, "haproxy_tls_acme_email": None, "haproxy_tls_acme_directory_url": "https://ca.example/dir"},
     "lb1: haproxy_tls_acme_email: is required for a public CA (https://ca.example/dir); give an address at which "
     "the CA can tell you about your certificates (revocations, changes of its terms)."),
    ({**ACME, "haproxy_tls_acme_email": "ops"}, "lb1: haproxy_tls_acme_email: 'ops' is not an e-mail address."),
    ({**ACME, "haproxy_tls_acme_directory_url": "http://acme.example/dir"},
     "lb1: haproxy_tls_acme_directory_url: 'http://acme.example/dir' is not an https:// URL; give the CA's ACME "
     "directory URL."),
    ({**ACME, "haproxy_tls_acme_directory_ca_file": "/nonexistent/ca.pem"},
     "lb1: haproxy_tls_acme_directory_ca_file: /nonexistent/ca.pem is not a file on the controller; give the PEM "
     "file of the CA that signs the directory's HTTPS certificate, or leave it unset to trust the system's CAs."),
    ({**ACME, "haproxy_tls_acme_renew_days": 0}, "lb1: haproxy_tls_acme_renew_days: 0 is below 1; give days before "
                                                 "expiry (30 for Let's Encrypt's 90-day certificates)."),
    ({**ACME, "haproxy_tls_acme_host": "lb9"}, "lb1: haproxy_tls_acme_host: 'lb9' is not one of the load balancers "
                                               "(lb1, lb2); name the one that asks the CA for the certificate."),
    ({**ACME, "haproxy_tls_acme_challenge_port": 443}, "lb1: haproxy_tls_acme_challenge_port: 443 is out of range "
                                                       "or already a port of HAProxy; give certbot a free port of "
                                                       "its own (8402)."),
    ({**ACME, **STATS, "haproxy_tls_acme_challenge_port": 8404},
     "lb1: haproxy_tls_acme_challenge_port: 8404 is out of range or already a port of HAProxy; give certbot a free "
     "port of its own (8402)."),
    ({**ACME, "haproxy_tls_acme_challenge_port": 70000},
     "lb1: haproxy_tls_acme_challenge_port: 70000 is out of range or already a port of HAProxy; give certbot a "
     "free port of its own (8402)."),
    ({"haproxy_tls_redirect": True}, "lb1: haproxy_tls_redirect: redirecting to https needs TLS; set "
                                     "haproxy_tls_enabled to true or drop the redirect."),
    ({"haproxy_hsts_max_age": 600}, "lb1: haproxy_hsts_max_age: HSTS is sent only over TLS; set haproxy_tls_enabled "
                                    "to true or leave haproxy_hsts_max_age unset."),
    ({"haproxy_tls_enabled": True, "haproxy_hsts_max_age": -1}, "lb1: haproxy_hsts_max_age: -1 is negative; give "
                                                                "seconds (31536000 is a year)."),
    ({"haproxy_tls_enabled": True, "haproxy_tls_port": 80}, "lb1: haproxy_tls_port: 80 is also haproxy_bind_port; "
                                                            "give TLS its own port (443)."),
    ({"haproxy_tls_enabled": True, "haproxy_tls_pem_path": "certs/site.pem"},
     "lb1: haproxy_tls_pem_path: certs/site.pem is not an absolute path; give the absolute path of the PEM file "
     "(certificate chain and private key) on the load balancer."),
    ({"haproxy_tls_enabled": True, "haproxy_tls_pem_path": None},
     "lb1: haproxy_tls_pem_path:  is not an absolute path; give the absolute path of the PEM file (certificate "
     "chain and private key) on the load balancer."),
    ({"haproxy_tls_enabled": True, "haproxy_tls_self_signed": True, "haproxy_tls_self_signed_names": []},
     "lb1: haproxy_tls_self_signed_names: is empty; give at least the name or address clients use for this load "
     "balancer."),
    ({**STATS, "haproxy_stats_bind_address": ""}, "lb1: haproxy_stats_bind_address: is required with "
                                                  "haproxy_stats_enabled; give the (internal) address the statistics "
                                                  "page should listen on."),
    ({**STATS, "haproxy_stats_password": None}, "lb1: haproxy_stats_password: is required with haproxy_stats_enabled; "
                                                "give a secret (from Ansible Vault, say)."),
    ({**STATS, "haproxy_stats_user": "st ats"}, "lb1: haproxy_stats_user: 'st ats' is not a usable user name; use "
                                                "letters, digits, '.', '_' and '-'."),
    ({**STATS, "haproxy_stats_port": 80}, "lb1: haproxy_stats_port: 80 is already the port of the wt frontend; give "
                                          "the statistics page its own."),
    ({**STATS, "haproxy_tls_enabled": True, "haproxy_stats_port": 443},
     "lb1: haproxy_stats_port: 443 is already the port of the wt frontend; give the statistics page its own."),
    ({**STATS, "haproxy_stats_uri": "/metrics"}, "lb1: haproxy_stats_uri: /metrics must start with / and not be "
                                                 "/metrics (the Prometheus exporter's path)."),
    ({**STATS, "haproxy_stats_uri": "stats"}, "lb1: haproxy_stats_uri: stats must start with / and not be /metrics "
                                              "(the Prometheus exporter's path)."),
])
def test_each_problem_names_host_and_variable_and_says_what_to_do(overrides, expected):
    assert problems(**overrides) == [expected]


def test_settings_that_need_a_feature_are_not_checked_without_it():
    assert problems(haproxy_tls_pem_path="relative.pem", haproxy_tls_port=80, haproxy_stats_password=None,
                    haproxy_stats_port=80, haproxy_tls_acme_names=["*.example.com"], haproxy_tls_acme_host="lb9") == []


def test_every_problem_at_once_in_a_fixed_order():
    found = problems(haproxy_bind_port=0, haproxy_tls_redirect=True, haproxy_tls_acme=True,
                     **{**STATS, "haproxy_stats_password": ""})
    assert [problem.split(": ")[1] for problem in found] == [
        "haproxy_bind_port", "haproxy_tls_acme", "haproxy_tls_redirect", "haproxy_stats_password"]


def test_no_message_carries_the_stats_password():
    found = problems(**{**STATS, "haproxy_stats_password": "hunter2", "haproxy_stats_user": "bad user",
                        "haproxy_stats_port": 80, "haproxy_stats_uri": "/metrics"})
    assert len(found) == 3 and not any("hunter2" in problem for problem in found)


def test_a_ca_file_is_looked_for_on_the_controller():
    assert problems(is_file=lambda path: path == "/etc/ssl/ca.pem",
                    **{**ACME, "haproxy_tls_acme_directory_ca_file": "/etc/ssl/ca.pem"}) == []


def test_a_private_ca_needs_no_contact_address():
    assert problems(**{**ACME, "haproxy_tls_acme_email": None, "haproxy_tls_acme_directory_ca_file": "/ca.pem"},
                    is_file=lambda path: True) == []


def test_values_read_as_ansibles_filters_read_them():
    # Extra vars arrive as strings; the argument spec checks types but converts nothing.
    assert problems(haproxy_bind_port="8080", haproxy_tls_enabled="yes", haproxy_tls_port="8080") == [
        "lb1: haproxy_tls_port: 8080 is also haproxy_bind_port; give TLS its own port (443)."]
    assert (as_int("42.7"), as_int("x"), as_int(None), as_int(True)) == (42, 0, 0, 1)
    assert (as_float("0.5"), as_float(None)) == (0.5, 0.0)
    assert [as_bool(value) for value in (True, 1, "Yes", "on", "1", "TRUE")] == [True] * 6
    assert [as_bool(value) for value in (False, 0, None, "no", "off", "", 2)] == [False] * 7


class RecordingVars(dict):
    """A host's variables that remember which were read (Ansible templates each one read)."""

    def __init__(self, values):
        super().__init__(values)
        self.read = []

    def __getitem__(self, name):
        self.read.append(name)
        return super().__getitem__(name)

    def get(self, name, default=None):
        return self[name] if name in self else default


def issuer(**overrides):
    return RecordingVars({**DEFAULTS, **ACME, **overrides})


def test_acme_settings_that_differ_from_the_issuers_are_named_together():
    lb1 = issuer(haproxy_tls_acme_names=["www.example.com", "example.com"], haproxy_tls_acme_renew_days="30")
    assert problems("lb2", {"lb1": lb1}, **ACME) == [
        "lb2: haproxy_tls_acme_names: differ from lb1's, which asks the CA for the one certificate every load "
        "balancer serves; give every load balancer the same ACME settings (group_vars of the load balancer group)."]
    lb1 = issuer(haproxy_tls_pem_path="/etc/haproxy/other.pem", haproxy_tls_acme_challenge_port=8403)
    assert problems("lb2", {"lb1": lb1}, **ACME)[0].startswith(
        "lb2: haproxy_tls_acme_challenge_port, haproxy_tls_pem_path: differ from lb1's")


def test_a_balancer_without_acme_differs_from_an_issuer_with_it():
    assert problems("lb2", {"lb1": issuer()})[0].startswith(
        "lb2: haproxy_tls_acme, haproxy_tls_acme_names, haproxy_tls_acme_email: differ from lb1's")


def test_a_setting_the_issuer_leaves_to_the_default_counts_as_this_balancers():
    lb1 = RecordingVars({"haproxy_tls_acme": True})  # the issuer's inventory variables: defaults are not among them
    assert problems("lb2", {"lb1": lb1}, **ACME) == []


def test_the_issuers_acme_settings_are_read_only_when_acme_is_asked_for():
    lb1 = RecordingVars({"haproxy_tls_acme": False, "haproxy_tls_pem_path": "/elsewhere.pem"})
    assert problems("lb2", {"lb1": lb1}) == []
    assert lb1.read == ["haproxy_tls_acme"]


def test_the_issuer_itself_reads_no_host_variables():
    class Unreadable(dict):
        def __getitem__(self, host):
            raise AssertionError(f"read hostvars[{host!r}]")

    assert problems("lb1", Unreadable(), **ACME) == []


def test_differing_compares_as_text():
    settings = {**DEFAULTS, "haproxy_tls_acme_renew_days": 30, "haproxy_tls_acme_challenge_port": "8402"}
    assert acme_settings_differing(settings, {"haproxy_tls_acme_renew_days": "30",
                                              "haproxy_tls_acme_challenge_port": 8402}) == []
    assert set(ACME_SHARED_SETTINGS) <= set(SETTINGS)


def test_settings_must_be_complete():
    settings = dict(DEFAULTS)
    del settings["haproxy_tls_port"]
    with pytest.raises(SettingsError, match="settings lacks haproxy_tls_port"):
        settings_problems("lb1", settings, LB_HOSTS, {})
