"""plan.yml over several inventories: what the roles would write, checked by the real tools.

Every rendered haproxy.cfg must pass `haproxy -c` with the HAProxy installed on this machine,
every rendered unit must pass `systemd-analyze verify`, and a bad inventory must fail before
anything is rendered, naming host and variable.
"""

import ctypes
import ctypes.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.ids import (
    PLACEMENT_BACKEND_ID,
    placement_server_id,
)

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ANSIBLE_PLAYBOOK = str(BIN / "ansible-playbook")
MAP_PATH = "/etc/haproxy/wt-sessions.map"


def run_plan(inventory, plan_dir, *extra):
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(REPO / "playbooks/plan.yml"),
         "-e", f"plan_dir={plan_dir}", *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)


def write_inventory(path, apps, lbs=None):
    lbs = lbs or {"lb1": {"ansible_host": "198.51.100.10"}}
    path.write_text(yaml.safe_dump({"all": {"children": {"haproxy": {"hosts": lbs}, "wt": {"hosts": apps}}}}))
    return path


def haproxy_check(plan_dir, lb, replacements=()):
    """`haproxy -c` on the rendered config, pointed at the rendered map instead of /etc's
    (and at local files for other paths on the load balancer: (path there, path here) pairs)."""
    if not shutil.which("haproxy"):
        pytest.fail("haproxy is not installed on this machine; .ci/run installs it (apt-get install haproxy)")
    rendered = plan_dir / lb / "etc/haproxy"
    config = (rendered / "haproxy.cfg").read_text().replace(MAP_PATH, str(rendered / "wt-sessions.map"))
    for there, here in replacements:
        config = config.replace(there, str(here))
    checked = rendered / "haproxy.check.cfg"
    checked.write_text(config)
    return subprocess.run(["haproxy", "-c", "-f", str(checked)], capture_output=True, text=True, check=False)


def map_entries(plan_dir, lb):
    lines = (plan_dir / lb / MAP_PATH.lstrip("/")).read_text().splitlines()
    return dict(line.split() for line in lines if line.strip() and not line.startswith("#"))


@pytest.fixture(scope="module")
def example_plan(tmp_path_factory):
    plan_dir = tmp_path_factory.mktemp("plan")
    result = run_plan(REPO / "inventory.example", plan_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    return plan_dir


def test_example_renders_every_managed_file(example_plan):
    files = sorted(str(p.relative_to(example_plan)) for p in example_plan.rglob("*") if p.is_file())
    expected = ["lb1/etc/haproxy/haproxy.cfg", "lb1/etc/haproxy/wt-sessions.map",
                "lb1/etc/systemd/system/haproxy.service.d/wtstack-server-state.conf"]
    for app in ("app1", "app2"):
        expected += [f"{app}/etc/systemd/system/wt@.service", f"{app}/etc/wtstack/wt/app.env",
                     f"{app}/etc/wtstack/wt/instances/9090.env", f"{app}/etc/wtstack/wt/instances/9091.env",
                     f"{app}/etc/wtstack/wt/wt_config.xml", f"{app}/opt/wtstack/releases/unversioned/release.env"]
    assert files == sorted(expected)


def test_example_haproxy_config_is_valid(example_plan):
    result = haproxy_check(example_plan, "lb1")
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_config_routes_by_map_not_by_acl_chain(example_plan):
    config = (example_plan / "lb1/etc/haproxy/haproxy.cfg").read_text()
    for deprecated in ("contimeout", "clitimeout", "srvtimeout", "url_sub"):
        assert deprecated not in config
    assert f"map_beg({MAP_PATH})" in config
    assert "timeout tunnel" in config
    assert "option redispatch" in config
    instances = [("app1-9090", "198.51.100.21:9090"), ("app1-9091", "198.51.100.21:9091"),
                 ("app2-9090", "198.51.100.22:9090"), ("app2-9091", "198.51.100.22:9091")]
    sections = dict(re.findall(r"^backend (\S+).*\n((?:    .*\n|\n)*)", config, re.M))
    assert list(sections) == [f"wt.{name}" for name, dummy in instances] + ["wt"]
    # Its own backend: the checked server, the ws lane (WebSocket upgrades, on connections of their
    # own), the relay back to wt; upgrades are routed to the lane first, everything else to the server.
    for name, address in instances:
        own = re.findall(r"^\s*server\s+(\S+)\s+(\S+)", sections[f"wt.{name}"], re.M)
        assert own == [(name, address), ("ws", address), ("relay", "abns@wtstack-relay-any-80")]
        assert re.search(rf"^\s*server {name} \S+ check observe layer4 ", sections[f"wt.{name}"], re.M)
        assert re.search(rf"^\s*server ws \S+ track {name} pool-max-conn 0\b", sections[f"wt.{name}"], re.M)
        rules = re.findall(r"^\s*use-server (\S+) if (.*)$", sections[f"wt.{name}"], re.M)
        assert rules == [("ws", "{ req.hdr(upgrade) -m found }"), (name, "TRUE")]
    assert re.search(r"^\s*http-reuse safe$", config, re.M) and "http-reuse never" not in config
    # Backend wt and its servers have the ids the runtime modules read one server by (show stat).
    assert re.search(rf"^    id {PLACEMENT_BACKEND_ID}$", sections["wt"], re.M)
    placement = re.findall(r"^\s*server\s+(\S+)\s+(\S+)\s+id (\d+) track\s+(\S+)", sections["wt"], re.M)
    assert placement == [(name, address, str(placement_server_id(name)), f"wt.{name}/{name}")
                         for name, address in instances]
    assert map_entries(example_plan, "lb1") == {"app1-9090-": "wt.app1-9090", "app1-9091-": "wt.app1-9091",
                                                "app2a-": "wt.app2-9090", "app2b-": "wt.app2-9091"}


def test_example_units_carry_each_instances_settings(example_plan):
    rendered = "\n".join(p.read_text() for p in (example_plan / "app2").rglob("*") if p.is_file())
    for expected in ("app2a-", "app2b-", "9090", "9091", "198.51.100.22"):
        assert expected in rendered


def test_example_units_pass_systemd_analyze_verify(example_plan, tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing (package systemd)")
    unit = (example_plan / "app1/etc/systemd/system/wt@.service").read_text()
    # verify also checks that ExecStart's program exists; it lives on the app host, not here.
    executable = re.search(r"^ExecStart=[-@+!]*(\S+)", unit, re.M).group(1)
    unit = unit.replace(executable, "/bin/true")
    instance = tmp_path / "wt@9090.service"
    instance.write_text(unit)
    result = subprocess.run(["systemd-analyze", "verify", str(instance)], capture_output=True, text=True, check=False)
    complaints = [line for line in result.stderr.splitlines() if "wt@9090.service" in line]
    assert result.returncode == 0 and not complaints, result.stderr


def test_a_thousand_instances_render_and_validate(tmp_path):
    apps = {f"app{n:02d}": {"ansible_host": f"10.20.{n}.1", "wt_instances": 20} for n in range(50)}
    inventory = write_inventory(tmp_path / "big.yml", apps)
    plan_dir = tmp_path / "plan"
    started = time.monotonic()
    # The load balancer side is the one that grows with the fleet; app hosts render per host.
    result = run_plan(inventory, plan_dir, "--limit", "lb1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(f"plan for 1,000 instances (load balancer) took {time.monotonic() - started:.1f}s")
    assert len(map_entries(plan_dir, "lb1")) == 1000
    check = haproxy_check(plan_dir, "lb1")
    assert check.returncode == 0, check.stdout + check.stderr


def rendered_tree(root):
    """{relative path: (mode, bytes)} of every file under root, and the modes of its directories."""
    return {str(path.relative_to(root)): (path.stat().st_mode & 0o7777, path.read_bytes() if path.is_file() else None)
            for path in sorted(root.rglob("*"))}


def test_plan_writes_what_one_template_task_per_file_writes(tmp_path):
    """plan.yml renders a host's whole file set in one task; on a mixed inventory (TLS, stats, a source
    address, extra config, counted and listed instances, your own program, a custom ansible_managed)
    it must write, byte for byte and mode for mode, what ansible.builtin.template writes file by file
    (and nothing at all with --check)."""
    artifact = tmp_path / "myapp.wt"
    artifact.write_text("#!/bin/sh\n")
    lbs = {"lb1": {"ansible_host": "198.51.100.10", "haproxy_source_address": "192.0.2.10",
                   "haproxy_tls_enabled": True, "haproxy_tls_self_signed": True, "haproxy_tls_redirect": True,
                   "haproxy_extra_config": "    timeout queue 5s\n"},
           "lb2": {**stats_balancer()["lb1"], "ansible_host": "198.51.100.11"}}
    apps = {"app1": {"ansible_host": "198.51.100.21", "wt_instances": 3, "wt_base_port": 10000},
            "app2": {"ansible_host": "198.51.100.22",
                     "wt_instances": [{"prefix": "wt1-", "port": 9090}, {"prefix": "wt10-", "weight": 50}]},
            "app3": {"ansible_host": "198.51.100.23", "wt_app_command": "/opt/wtstack/app/myapp.wt",
                     "wt_app_artifact": str(artifact), "wt_app_extra_args": ["--threads", "4"],
                     "wt_app_environment": {"MYAPP_DB": "postgresql://db/app"}, "wt_app_version": "1.4.2",
                     "ansible_managed": "Managed by wtstack.fleet for {{ inventory_hostname }}"}}
    inventory = write_inventory(tmp_path / "mixed.yml", apps, lbs)
    checked = run_plan(inventory, tmp_path / "plan", "--check")
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert not (tmp_path / "plan").exists(), "plan.yml --check wrote files"
    plan = run_plan(inventory, tmp_path / "plan")
    assert plan.returncode == 0, plan.stdout[-3000:]
    # Not a playbook of playbooks/ (whose adjacent collections are the checkout): the checkout's link by path.
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections")}
    reference = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(REPO / "tests/integration/plan_by_template_tasks.yml"),
         "-e", f"plan_dir={tmp_path / 'reference'}", "-e", f"roles_dir={REPO / 'roles'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert reference.returncode == 0, reference.stdout[-3000:]
    planned, expected = rendered_tree(tmp_path / "plan"), rendered_tree(tmp_path / "reference")
    rendered = [name for name, (dummy, content) in expected.items() if content is not None]
    assert len(rendered) == 2 * 3 + 3 * 4 + 3 + 2 + 1
    assert planned.keys() == expected.keys()
    assert [name for name in expected if planned[name] != expected[name]] == []


@pytest.mark.parametrize("apps, expected", [
    ({"app1": {"ansible_host": "10.0.0.2", "wt_instances": [{"prefix": "wt1"}]},
      "app2": {"ansible_host": "10.0.0.3", "wt_instances": [{"prefix": "wt10"}]}},
     "app2: wt_instances[0].prefix: prefix 'wt10' begins with 'wt1' of app1"),
    ({"app1": {"ansible_host": "10.0.0.2", "wt_instances": [{"port": 9090}, {"port": 9090}]}},
     "app1: wt_instances[1].port: port 9090 is already used"),
    ({"app1": {"ansible_host": "not-an-ip", "wt_instances": 1}},
     "app1: ansible_host: 'not-an-ip' is not an IP address"),
    ({"app1": {"ansible_host": "10.0.0.2", "wt_instance": 2}},
     "app1: wt_instance: unknown variable; did you mean wt_instances?"),
])
def test_bad_inventory_fails_before_rendering_anything(tmp_path, apps, expected):
    plan_dir = tmp_path / "plan"
    result = run_plan(write_inventory(tmp_path / "bad.yml", apps), plan_dir)
    assert result.returncode != 0
    assert expected in result.stdout, result.stdout[-3000:]
    assert not plan_dir.exists() or not any(plan_dir.iterdir())


def test_your_own_variables_under_the_roles_prefixes_are_allowed_by_name_or_pattern(tmp_path):
    """wtstack_allowed_variables (group_vars of the fleet) lets a variable of yours through; without it, the
    same inventory is refused before anything is rendered."""
    apps = {"app1": {"ansible_host": "10.0.0.2", "wt_app_mycompany_team": "web", "rolling_window": "night"}}
    lbs = {"lb1": {"ansible_host": "10.0.0.10", "haproxy_mycompany_tier": "gold"}}
    inventory = write_inventory(tmp_path / "own.yml", apps, lbs)
    refused = run_plan(inventory, tmp_path / "refused")
    assert refused.returncode != 0
    for name in ("app1: wt_app_mycompany_team", "app1: rolling_window", "lb1: haproxy_mycompany_tier"):
        assert f"{name}: unknown variable" in refused.stdout, refused.stdout[-3000:]
    assert not (tmp_path / "refused").exists()
    data = yaml.safe_load(inventory.read_text())
    data["all"]["vars"] = {"wtstack_allowed_variables": ["*_mycompany_*", "rolling_window"]}
    inventory.write_text(yaml.safe_dump(data))
    allowed = run_plan(inventory, tmp_path / "allowed")
    assert allowed.returncode == 0, allowed.stdout[-3000:]


def test_with_become_nothing_escalates_on_the_controller(tmp_path):
    """How users reach their hosts (-b, or ansible_become in the inventory) changes nothing for plan.yml, which
    contacts no host: with a sudo that cannot run, every play still succeeds."""
    apps = {"app1": {"ansible_host": "10.0.0.2"}}
    data = yaml.safe_load(write_inventory(tmp_path / "become.yml", apps).read_text())
    # To another user, so that the test sees an escalation even when it runs as root (Ansible skips a
    # become to the user it already is).
    data["all"]["vars"] = {"ansible_become": True, "ansible_become_user": "nobody",
                           "ansible_become_exe": "/nonexistent/sudo"}
    inventory = tmp_path / "become.yml"
    inventory.write_text(yaml.safe_dump(data))
    result = run_plan(inventory, tmp_path / "plan", "-b")
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "plan/app1/etc/systemd/system/wt@.service").is_file()


def test_plan_dir_is_required(tmp_path):
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    result = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(REPO / "inventory.example"), str(REPO / "playbooks/plan.yml")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0 and "-e plan_dir=" in result.stdout


def test_source_address_goes_on_default_server_and_into_trusted_proxies(tmp_path):
    apps = {"app1": {"ansible_host": "198.51.100.21", "wt_instances": 1}}
    lbs = {"lb1": {"ansible_host": "198.51.100.10", "haproxy_source_address": "192.0.2.10"},
           "lb2": {"ansible_host": "198.51.100.11"}}
    plan_dir = tmp_path / "plan"
    result = run_plan(write_inventory(tmp_path / "source.yml", apps, lbs), plan_dir)
    assert result.returncode == 0, result.stdout[-3000:]
    lb1 = (plan_dir / "lb1/etc/haproxy/haproxy.cfg").read_text()
    # On every server that connects to an instance (checked, ws lane, placement), never on the relay.
    sourced = re.findall(r"^\s*server (\S+) .* source 192\.0\.2\.10$", lb1, re.M)
    assert sourced == ["app1-9090", "ws", "app1-9090"], lb1
    assert not re.search(r"^\s*server relay .* source ", lb1, re.M)
    assert " source " not in (plan_dir / "lb2/etc/haproxy/haproxy.cfg").read_text()
    for lb in ("lb1", "lb2"):
        check = haproxy_check(plan_dir, lb)
        assert check.returncode == 0, check.stdout + check.stderr
    wt_config = (plan_dir / "app1/etc/wtstack/wt/wt_config.xml").read_text()
    assert re.findall(r"<proxy>(.*)</proxy>", wt_config) == ["192.0.2.10", "198.51.100.11"]


def test_a_source_address_that_is_not_an_ip_fails_naming_balancer_and_variable(tmp_path):
    lbs = {"lb1": {"ansible_host": "198.51.100.10", "haproxy_source_address": "lb1.example.com"}}
    plan_dir = tmp_path / "plan"
    result = run_plan(write_inventory(tmp_path / "bad.yml", {"app1": {"ansible_host": "10.0.0.2"}}, lbs), plan_dir)
    assert result.returncode != 0
    assert "lb1: haproxy_source_address: 'lb1.example.com' is not an IP address" in result.stdout, result.stdout[-3000:]


def self_signed_pem(directory):
    """A certificate and key in one PEM, like the role generates on a load balancer."""
    key, cert, pem = directory / "key.pem", directory / "cert.pem", directory / "combined.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "1", "-subj", "/CN=lb1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    pem.write_text(cert.read_text() + key.read_text())
    return pem


TLS_PEM = "/etc/haproxy/tls/wtstack.pem"


@pytest.mark.parametrize("tls_port, redirect", [
    (443, "http-request redirect scheme https code 301 unless { ssl_fc }"),
    (8443, "http-request redirect location https://%[req.hdr(host),regsub(:[0-9]+$,)]:8443%[capture.req.uri] "
           "code 301 unless { ssl_fc }"),
])
def test_tls_termination_renders_and_validates(tmp_path, tls_port, redirect):
    lbs = {"lb1": {"ansible_host": "198.51.100.10", "haproxy_tls_enabled": True, "haproxy_tls_self_signed": True,
                   "haproxy_tls_port": tls_port, "haproxy_tls_redirect": True, "haproxy_hsts_max_age": 31536000}}
    plan_dir = tmp_path / "plan"
    result = run_plan(write_inventory(tmp_path / "tls.yml", {"app1": {"ansible_host": "10.0.0.2"}}, lbs), plan_dir)
    assert result.returncode == 0, result.stdout[-3000:]
    config = (plan_dir / "lb1/etc/haproxy/haproxy.cfg").read_text()
    assert f"bind *:{tls_port} ssl crt {TLS_PEM} alpn h2,http/1.1" in config
    assert "bind *:80\n" in config
    assert "ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets" in config
    assert "ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:" in config
    assert redirect in config
    assert 'http-response set-header Strict-Transport-Security "max-age=31536000" if { ssl_fc }' in config
    assert "X-Forwarded-Proto %[ssl_fc,iif(https,http)]" in config
    check = haproxy_check(plan_dir, "lb1", [(TLS_PEM, self_signed_pem(tmp_path))])
    assert check.returncode == 0, check.stdout + check.stderr


def test_without_tls_nothing_about_it_is_rendered(example_plan):
    config = (example_plan / "lb1/etc/haproxy/haproxy.cfg").read_text()
    for absent in (" ssl ", "ssl-default", "redirect", "Strict-Transport-Security", "stats enable", "userlist",
                   " source "):
        assert absent not in config


def test_a_missing_certificate_fails_haproxy_validation(tmp_path):
    """What the role's scratch validation relies on: haproxy -c loads the certificate."""
    lbs = {"lb1": {"ansible_host": "198.51.100.10", "haproxy_tls_enabled": True,
                   "haproxy_tls_pem_path": "/nonexistent/lb1.pem"}}
    plan_dir = tmp_path / "plan"
    result = run_plan(write_inventory(tmp_path / "tls.yml", {"app1": {"ansible_host": "10.0.0.2"}}, lbs), plan_dir)
    assert result.returncode == 0, result.stdout[-3000:]
    check = haproxy_check(plan_dir, "lb1")
    assert check.returncode != 0 and "/nonexistent/lb1.pem" in check.stdout + check.stderr


@pytest.mark.parametrize("lb_vars, expected", [
    ({"haproxy_tls_redirect": True}, "lb1: haproxy_tls_redirect: redirecting to https needs TLS"),
    ({"haproxy_hsts_max_age": 600}, "lb1: haproxy_hsts_max_age: HSTS is sent only over TLS"),
    ({"haproxy_tls_enabled": True, "haproxy_tls_port": 80}, "lb1: haproxy_tls_port: 80 is also haproxy_bind_port"),
    ({"haproxy_tls_enabled": True, "haproxy_tls_pem_path": "certs/lb1.pem"},
     "lb1: haproxy_tls_pem_path: certs/lb1.pem is not an absolute path"),
])
def test_inconsistent_tls_settings_fail_naming_host_and_variable(tmp_path, lb_vars, expected):
    lbs = {"lb1": {"ansible_host": "198.51.100.10", **lb_vars}}
    plan_dir = tmp_path / "plan"
    result = run_plan(write_inventory(tmp_path / "bad.yml", {"app1": {"ansible_host": "10.0.0.2"}}, lbs), plan_dir)
    assert result.returncode != 0
    assert expected in " ".join(result.stdout.split()), result.stdout[-3000:]
    assert not (plan_dir / "lb1/etc/haproxy/haproxy.cfg").exists()


def test_every_inconsistent_setting_is_named_in_one_run(tmp_path):
    lbs = {"lb1": {"ansible_host": "198.51.100.10", "haproxy_tls_redirect": True, "haproxy_hsts_max_age": 600}}
    result = run_plan(write_inventory(tmp_path / "bad.yml", {"app1": {"ansible_host": "10.0.0.2"}}, lbs),
                      tmp_path / "plan")
    assert result.returncode != 0
    output = " ".join(result.stdout.split())
    assert "lb1: haproxy_tls_redirect: redirecting to https needs TLS" in output, result.stdout[-3000:]
    assert "lb1: haproxy_hsts_max_age: HSTS is sent only over TLS" in output, result.stdout[-3000:]


STATS_PASSWORD = "Pa55-w0rd-SeKrit"


def stats_balancer(**extra):
    return {"lb1": {"ansible_host": "198.51.100.10", "haproxy_stats_enabled": True,
                    "haproxy_stats_bind_address": "127.0.0.1", "haproxy_stats_password": STATS_PASSWORD, **extra}}


def test_stats_page_and_metrics_render_validate_and_keep_the_password_out_of_diff(tmp_path):
    inventory = write_inventory(tmp_path / "stats.yml", {"app1": {"ansible_host": "10.0.0.2"}}, stats_balancer())
    plan_dir = tmp_path / "plan"
    first = run_plan(inventory, plan_dir, "--diff")
    assert first.returncode == 0, first.stdout[-3000:]
    config = (plan_dir / "lb1/etc/haproxy/haproxy.cfg").read_text()
    assert STATS_PASSWORD not in config
    password_hash = re.search(r"^\s*user stats password (\$6\$\S+)$", config, re.M).group(1)
    assert "bind 127.0.0.1:8404" in config and "stats uri /stats" in config
    assert "http-request use-service prometheus-exporter if { path /metrics }" in config
    assert "http-request auth realm wtstack-stats unless { http_auth(wtstack_stats) }" in config
    check = haproxy_check(plan_dir, "lb1")
    assert check.returncode == 0, check.stdout + check.stderr

    # The same password renders the same file (idempotent); a new one changes it, and --diff shows neither.
    again = run_plan(inventory, plan_dir, "--diff")
    assert (plan_dir / "lb1/etc/haproxy/haproxy.cfg").read_text() == config
    inventory = write_inventory(tmp_path / "stats.yml", {"app1": {"ansible_host": "10.0.0.2"}},
                                stats_balancer(haproxy_stats_password="another-S3cret"))
    changed = run_plan(inventory, plan_dir, "--diff")
    assert changed.returncode == 0, changed.stdout[-3000:]
    new_hash = re.search(r"^\s*user stats password (\$6\$\S+)$",
                         (plan_dir / "lb1/etc/haproxy/haproxy.cfg").read_text(), re.M).group(1)
    assert new_hash != password_hash
    assert "+++ after" in first.stdout, "--diff showed no diff at all"  # the map's, on the first run
    assert "changed=0" in again.stdout
    for run in (first, again, changed):
        output = run.stdout + run.stderr
        for secret in (STATS_PASSWORD, "another-S3cret", password_hash, new_hash, "$6$"):
            assert secret not in output


def libcrypt_crypt():
    """crypt(3) from libcrypt, as HAProxy calls it (Python's crypt module is gone from 3.13, Debian 13's)."""
    name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
    try:
        library = ctypes.CDLL(name)
    except OSError:
        pytest.skip(f"missing tool: {name} (apt-get install libcrypt1)")
    library.crypt.restype = ctypes.c_char_p
    library.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lambda password, salt: (library.crypt(password.encode(), salt.encode()) or b"").decode()


def test_the_stats_hash_is_what_haproxy_checks(tmp_path):
    """crypt(3) on this machine accepts the rendered hash for the password (what HAProxy does per request)."""
    crypt = libcrypt_crypt()
    inventory = write_inventory(tmp_path / "stats.yml", {"app1": {"ansible_host": "10.0.0.2"}}, stats_balancer())
    result = run_plan(inventory, tmp_path / "plan")
    assert result.returncode == 0, result.stdout[-3000:]
    config = (tmp_path / "plan/lb1/etc/haproxy/haproxy.cfg").read_text()
    password_hash = re.search(r"^\s*user stats password (\$6\$\S+)$", config, re.M).group(1)
    assert crypt(STATS_PASSWORD, password_hash) == password_hash


@pytest.mark.parametrize("lb_vars, expected", [
    ({"haproxy_stats_password": None}, "lb1: haproxy_stats_password: is required with haproxy_stats_enabled"),
    ({"haproxy_stats_bind_address": ""}, "lb1: haproxy_stats_bind_address: is required with haproxy_stats_enabled"),
    ({"haproxy_stats_port": 80}, "lb1: haproxy_stats_port: 80 is already the port of the wt frontend"),
    ({"haproxy_stats_uri": "/metrics"}, "lb1: haproxy_stats_uri: /metrics must start with / and not be /metrics"),
])
def test_incomplete_stats_settings_fail_naming_host_and_variable(tmp_path, lb_vars, expected):
    inventory = write_inventory(tmp_path / "bad.yml", {"app1": {"ansible_host": "10.0.0.2"}}, stats_balancer(**lb_vars))
    result = run_plan(inventory, tmp_path / "plan")
    assert result.returncode != 0
    assert expected in " ".join(result.stdout.split()), result.stdout[-3000:]
    assert STATS_PASSWORD not in result.stdout + result.stderr


ACME_VARS = {"haproxy_tls_enabled": True, "haproxy_tls_acme": True, "haproxy_tls_redirect": True,
             "haproxy_tls_acme_names": ["www.example.org", "example.org"], "haproxy_tls_acme_email": "ops@example.org"}


def test_acme_routes_challenges_to_the_issuing_balancer_and_renders_its_timer(tmp_path):
    lbs = {"lb1": {"ansible_host": "198.51.100.10", **ACME_VARS}, "lb2": {"ansible_host": "198.51.100.11", **ACME_VARS}}
    plan_dir = tmp_path / "plan"
    result = run_plan(write_inventory(tmp_path / "acme.yml", {"app1": {"ansible_host": "10.0.0.2"}}, lbs), plan_dir)
    assert result.returncode == 0, result.stdout[-3000:]
    pem = self_signed_pem(tmp_path)
    for lb in ("lb1", "lb2"):
        config = (plan_dir / lb / "etc/haproxy/haproxy.cfg").read_text()
        # Before any routing rule, on every balancer, to certbot on the first one; never redirected to https.
        frontend = config[config.index("frontend wt"):]
        assert frontend.index("use_backend acme_challenge if { path_beg /.well-known/acme-challenge/ }") < \
            frontend.index("use_backend %[var(txn.instance_backend)]") < frontend.index("default_backend")
        assert "code 301 unless { ssl_fc } || { path_beg /.well-known/acme-challenge/ }" in config
        assert re.search(r"^backend acme_challenge\n\s+server certbot 198\.51\.100\.10:8402$", config, re.M), config
        check = haproxy_check(plan_dir, lb, [(TLS_PEM, pem)])
        assert check.returncode == 0, check.stdout + check.stderr
    settings = yaml.safe_load((plan_dir / "lb1/etc/wtstack-acme/wtstack-acme.json").read_text())
    assert settings["names"] == ["www.example.org", "example.org"]
    assert settings["directory_url"] == "https://acme-v02.api.letsencrypt.org/directory"
    assert (settings["challenge_address"], settings["challenge_port"]) == ("198.51.100.10", 8402)
    assert not (plan_dir / "lb2/etc/wtstack-acme").exists(), "only the issuing balancer renews"
    units = plan_dir / "lb1/etc/systemd/system"
    service = (units / "wtstack-acme-renew.service").read_text().replace("/usr/local/sbin/wtstack-acme", "/bin/true")
    (tmp_path / "wtstack-acme-renew.service").write_text(service)
    (tmp_path / "wtstack-acme-renew.timer").write_text((units / "wtstack-acme-renew.timer").read_text())
    verify = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "wtstack-acme-renew.timer"),
                             str(tmp_path / "wtstack-acme-renew.service")], capture_output=True, text=True,
                            check=False)
    assert verify.returncode == 0 and "wtstack-acme" not in verify.stderr, verify.stderr


@pytest.mark.parametrize("lbs, expected", [
    ({"lb1": {"haproxy_tls_acme": True, "haproxy_tls_acme_names": ["example.org"]}},
     ["lb1: haproxy_tls_acme: an ACME certificate is for TLS"]),
    ({"lb1": {**ACME_VARS, "haproxy_tls_self_signed": True, "haproxy_tls_acme_names": ["*.example.org", "192.0.2.1"],
              "haproxy_tls_acme_email": None, "haproxy_tls_acme_directory_url": "http://acme.example/dir",
              "haproxy_tls_acme_host": "lb9", "haproxy_tls_acme_challenge_port": 443}},
     ["lb1: haproxy_tls_self_signed: contradicts haproxy_tls_acme",
      "lb1: haproxy_tls_acme_names: *.example.org, 192.0.2.1 cannot be validated over HTTP-01",
      "lb1: haproxy_tls_acme_email: is required for a public CA (http://acme.example/dir)",
      "lb1: haproxy_tls_acme_directory_url: 'http://acme.example/dir' is not an https:// URL",
      "lb1: haproxy_tls_acme_host: 'lb9' is not one of the load balancers (lb1)",
      "lb1: haproxy_tls_acme_challenge_port: 443 is out of range or already a port of HAProxy"]),
    ({"lb1": {**ACME_VARS, "haproxy_tls_acme_names": [], "haproxy_tls_acme_directory_ca_file": "/nonexistent/ca.pem"},
      "lb2": {**ACME_VARS, "haproxy_tls_acme_directory_ca_file": "/nonexistent/ca.pem"}},
     ["lb1: haproxy_tls_acme_names: is empty",
      "lb1: haproxy_tls_acme_directory_ca_file: /nonexistent/ca.pem is not a file on the controller",
      "lb2: haproxy_tls_acme_names: differ from lb1's, which asks the CA for the one certificate"]),
])
def test_contradictory_acme_settings_fail_naming_host_and_variable(tmp_path, lbs, expected):
    addresses = iter(("198.51.100.10", "198.51.100.11"))
    lbs = {lb: {"ansible_host": next(addresses), **lb_vars} for lb, lb_vars in lbs.items()}
    plan_dir = tmp_path / "plan"
    result = run_plan(write_inventory(tmp_path / "bad.yml", {"app1": {"ansible_host": "10.0.0.2"}}, lbs), plan_dir)
    assert result.returncode != 0
    # ansible-core 2.17 prints the message as a single-quoted YAML scalar, doubling its quotes.
    output = " ".join(result.stdout.split()).replace("''", "'")
    for fragment in expected:
        assert fragment in output, result.stdout[-3000:]
    assert not (plan_dir / "lb1/etc/haproxy/haproxy.cfg").exists()
