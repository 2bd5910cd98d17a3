"""The pure parts of tests/lab/lab.py: fleet files, inventory, image recipe."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.wtstack.fleet.plugins.module_utils.topology import build_topology

LAB_PY = Path(__file__).resolve().parents[2] / "lab" / "lab.py"
REPO = LAB_PY.parents[2]
_spec = importlib.util.spec_from_file_location("wtstack_lab", LAB_PY)
lab = importlib.util.module_from_spec(_spec)
sys.modules["wtstack_lab"] = lab  # dataclasses look the module up while the class is created
_spec.loader.exec_module(lab)

KEY = Path("/repo/.lab/ssh/id_ed25519")


def fleet(**hosts):
    return lab.parse_fleet({"hosts": hosts}, "test.yml")


def lb(**extra):
    return {"address": "127.0.10.1", "groups": ["haproxy"], **extra}


def app(n, **extra):
    return {"address": f"127.0.10.{n + 1}", "groups": ["wt"], "vars": {"wt_instances": 2}, **extra}


def error_of(data):
    with pytest.raises(lab.FleetError) as caught:
        lab.parse_fleet(data, "test.yml")
    return str(caught.value)


# ----------------------------------------------------------------------------- fleet files

def test_default_fleet_file_is_the_documented_fleet():
    default = lab.load_fleet(lab.DEFAULT_FLEET)
    assert [(h.name, h.address, h.suite, h.groups) for h in default.hosts] == [
        ("lb1", "127.0.10.1", "trixie", ("haproxy",)),
        ("app1", "127.0.10.2", "trixie", ("wt",)),
        ("app2", "127.0.10.3", "trixie", ("wt",)),
    ]
    assert default.host("app1").hostvars == {"wt_instances": 2}


def test_bookworm_fleet_file_puts_the_load_balancer_on_debian_12():
    mixed = lab.load_fleet(lab.LAB_SOURCE_DIR / "fleets" / "bookworm.yml")
    assert {h.name: h.suite for h in mixed.hosts} == {"lb1": "bookworm", "app1": "trixie", "app2": "trixie"}


def test_suite_defaults_to_trixie_and_each_host_may_override_it():
    parsed = lab.parse_fleet({"hosts": {"lb1": lb(suite="bookworm"), "app1": app(1)}}, "t")
    assert [h.suite for h in parsed.hosts] == ["bookworm", "trixie"]
    parsed = lab.parse_fleet({"suite": "bookworm", "hosts": {"app1": app(1)}}, "t")
    assert parsed.hosts[0].suite == "bookworm"


def test_host_order_is_kept():
    parsed = fleet(app2=app(2), lb1=lb(), app1=app(1))
    assert [h.name for h in parsed.hosts] == ["app2", "lb1", "app1"]


@pytest.mark.parametrize("data, words", [
    (None, ["top level", "mapping"]),
    ({"hosts": {}}, ["hosts", "non-empty"]),
    ({"hosts": {"lb1": lb()}, "networks": "x"}, ["unknown key", "networks"]),
    ({"hosts": {"lb1": lb()}, "network": "x"}, ["network", "'x' is not an IPv4 network"]),
    ({"hosts": {"lb1": lb()}, "network": "10.0.0.0/24"}, ["network", "not inside 198.18.0.0/15"]),
    ({"hosts": {"lb1": lb()}, "network": "198.18.0.0/30"}, ["network", "too small"]),
    ({"hosts": {"lb1": lb(address="127.0.10.1")}, "network": "198.18.0.0/24"},
     ["host 'lb1': address", "not in the fleet's network 198.18.0.0/24"]),
    ({"hosts": {"lb1": lb(address="198.18.0.1")}, "network": "198.18.0.0/24"},
     ["host 'lb1': address", "reserved", "lab bridge"]),
    ({"hosts": {"lb1": lb(address="198.18.0.255")}, "network": "198.18.0.0/24"}, ["host 'lb1': address", "reserved"]),
    ({"hosts": {"lb1": lb()}, "group_vars": []}, ["group_vars", "mapping"]),
    ({"hosts": {"lb1": lb()}, "group_vars": {"haproxy": [1]}}, ["group_vars: haproxy", "mapping"]),
    ({"hosts": {"lb1": lb()}, "group_vars": {"haproxy": {"ansible_user": "x"}}}, ["group_vars: haproxy", "lab itself"]),
    ({"suite": "sid", "hosts": {"lb1": lb()}}, ["suite", "'sid'"]),
    ({"hosts": {"LB_1": lb()}}, ["'LB_1'", "hostname"]),
    ({"hosts": {"lb1": "127.0.10.1"}}, ["host 'lb1'", "mapping"]),
    ({"hosts": {"lb1": lb(wt_instances=2)}}, ["host 'lb1'", "wt_instances", "under 'vars'"]),
    ({"hosts": {"lb1": lb(address=None)}}, ["host 'lb1': address", "required"]),
    ({"hosts": {"lb1": lb(address="127.0.10")}}, ["host 'lb1': address", "not an IPv4"]),
    ({"hosts": {"lb1": lb(address="10.0.0.1")}}, ["host 'lb1': address", "127.0.0.0/8"]),
    ({"hosts": {"lb1": lb(address="127.0.0.1")}}, ["host 'lb1': address", "reserved"]),
    ({"hosts": {"lb1": lb(suite="buster")}}, ["host 'lb1': suite", "'buster'"]),
    ({"hosts": {"lb1": lb(groups=[])}}, ["host 'lb1': groups", "non-empty"]),
    ({"hosts": {"lb1": lb(groups="haproxy")}}, ["host 'lb1': groups", "list"]),
    ({"hosts": {"lb1": lb(groups=["load-balancers"])}}, ["host 'lb1': groups", "'load-balancers'"]),
    ({"hosts": {"lb1": lb(groups=["all"])}}, ["host 'lb1': groups", "'all'"]),
    ({"hosts": {"lb1": lb(groups=["wt", "wt"])}}, ["host 'lb1': groups", "twice"]),
    ({"hosts": {"lb1": lb(vars=[1])}}, ["host 'lb1': vars", "mapping"]),
    ({"hosts": {"lb1": lb(vars={"bad-name": 1})}}, ["host 'lb1': vars", "'bad-name'"]),
    ({"hosts": {"lb1": lb(vars={"ansible_host": "127.0.0.9"})}}, ["host 'lb1': vars", "ansible_host", "lab itself"]),
])
def test_bad_fleet_files_fail_naming_the_host_and_the_key(data, words):
    message = error_of(data)
    assert message.startswith("test.yml: ")
    for word in words:
        assert word in message


def test_an_address_used_twice_names_both_hosts():
    message = error_of({"hosts": {"lb1": lb(), "app1": app(1, address="127.0.10.1")}})
    assert "host 'app1': address" in message and "'lb1'" in message


def test_address_with_leading_zeros_is_refused_as_ambiguous():
    assert "not an IPv4" in error_of({"hosts": {"lb1": lb(address="127.000.010.001")}})


def test_unreadable_and_invalid_yaml_files_are_fleet_errors(tmp_path):
    with pytest.raises(lab.FleetError, match="cannot read"):
        lab.load_fleet(tmp_path / "missing.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("hosts: [\n")
    with pytest.raises(lab.FleetError, match="not valid YAML"):
        lab.load_fleet(broken)


# ----------------------------------------------------------------------------- inventory

def test_inventory_groups_and_connection_vars():
    inventory = lab.build_inventory(fleet(lb1=lb(), app1=app(1), app2=app(2)), KEY)
    children = inventory["all"]["children"]
    assert list(children) == ["haproxy", "wt"]
    assert list(children["wt"]["hosts"]) == ["app1", "app2"]
    app1 = children["wt"]["hosts"]["app1"]
    assert app1 == {
        "ansible_host": "127.0.10.2",
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(KEY),
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "wt_instances": 2,
    }


def test_the_deploy_inventory_logs_in_unprivileged_and_becomes_root():
    parsed = fleet(lb1=lb(), app1=app(1))
    as_root = lab.build_inventory(parsed, KEY)["all"]["children"]
    as_deploy = lab.build_inventory(parsed, KEY, lab.DEPLOY_USER)["all"]["children"]
    for group, host in (("haproxy", "lb1"), ("wt", "app1")):
        assert as_deploy[group]["hosts"][host] == {**as_root[group]["hosts"][host], "ansible_user": "deploy",
                                                   "ansible_become": True}
        assert "ansible_become" not in as_root[group]["hosts"][host]
    text = lab.render_inventory(parsed, KEY, lab.DEPLOY_USER)
    assert "logs in as deploy, who has no privilege but passwordless sudo" in text
    assert yaml.safe_load(text) == lab.build_inventory(parsed, KEY, lab.DEPLOY_USER)


def test_a_fleet_file_cannot_set_become():
    assert "ansible_become" in error_of({"hosts": {"lb1": lb(vars={"ansible_become": False})}})


def test_account_ids_are_read_from_the_containers_passwd(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n"
                                         "deploy:x:1000:1000::/home/deploy:/bin/bash\n")
    assert lab.account_ids(tmp_path, "deploy") == (1000, 1000)
    with pytest.raises(lab.LabError, match="no account nobody"):
        lab.account_ids(tmp_path, "nobody")


def test_load_balancers_bind_to_their_own_address_only():
    children = lab.build_inventory(fleet(lb1=lb(), app1=app(1)), KEY)["all"]["children"]
    assert children["haproxy"]["hosts"]["lb1"]["haproxy_bind_address"] == "127.0.10.1"
    assert "haproxy_bind_address" not in children["wt"]["hosts"]["app1"]


def test_load_balancers_connect_to_instances_from_their_own_address():
    children = lab.build_inventory(fleet(lb1=lb(), app1=app(1)), KEY)["all"]["children"]
    assert children["haproxy"]["hosts"]["lb1"]["haproxy_source_address"] == "127.0.10.1"
    assert "haproxy_source_address" not in children["wt"]["hosts"]["app1"]


def test_extra_hostvars_go_in_verbatim_and_may_override_lab_defaults():
    instances = [{"prefix": "app1a", "port": 9090}, {"prefix": "app1b", "port": 9091, "weight": 50}]
    parsed = fleet(lb1=lb(vars={"haproxy_bind_address": "127.0.10.9"}),
                   app1=app(1, vars={"wt_instances": instances, "wt_base_port": 9100}))
    children = lab.build_inventory(parsed, KEY)["all"]["children"]
    assert children["haproxy"]["hosts"]["lb1"]["haproxy_bind_address"] == "127.0.10.9"
    assert children["wt"]["hosts"]["app1"]["wt_instances"] == instances
    assert children["wt"]["hosts"]["app1"]["wt_base_port"] == 9100


def network_fleet(**extra):
    return lab.parse_fleet({"network": "198.18.0.0/24", "hosts": {
        "lb1": lb(address="198.18.0.11"), "app1": app(1, address="198.18.0.21")}, **extra}, "ha.yml")


def test_a_fleet_on_the_private_network_puts_each_host_at_its_address_behind_this_machines_bridge():
    parsed = network_fleet(group_vars={"haproxy": {"haproxy_vips": ["198.18.0.100/24"]}})
    assert str(parsed.network) == "198.18.0.0/24" and parsed.gateway == "198.18.0.1"
    children = lab.build_inventory(parsed, KEY)["all"]["children"]
    # Each host has a network namespace of its own: HAProxy binds *:80 and connects from its own address.
    assert "haproxy_bind_address" not in children["haproxy"]["hosts"]["lb1"]
    assert "haproxy_source_address" not in children["haproxy"]["hosts"]["lb1"]
    assert children["haproxy"]["hosts"]["lb1"]["ansible_host"] == "198.18.0.11"
    assert children["haproxy"]["vars"] == {"haproxy_vips": ["198.18.0.100/24"]}
    assert "vars" not in children["wt"]


def test_the_ha_fleet_file_is_a_valid_private_network_fleet():
    parsed = lab.load_fleet(lab.REPO_DIR / "tests/e2e/fleet-ha.yml")
    assert parsed.network is not None
    assert {host.suite for host in parsed.hosts if "haproxy" in host.groups} == {"trixie", "bookworm"}
    assert len(parsed.group_vars["haproxy"]["haproxy_vips"]) >= 2


def test_network_names_fit_the_kernels_limits_and_differ_per_checkout(monkeypatch):
    names = [lab.bridge_name(), lab.veth_name("a-very-long-host-name-of-sixty-chars")]
    assert all(len(name) <= 15 for name in names), names
    mac = lab.mac_address("lb1")
    assert mac == lab.mac_address("lb1") != lab.mac_address("lb2")
    assert int(mac.split(":")[0], 16) & 0b11 == 0b10, "locally administered, unicast"
    before = lab.bridge_name(), lab.netns_name("lb1")
    monkeypatch.setattr(lab, "LAB_DIR", lab.LAB_DIR.parent / "another-checkout" / ".lab")
    assert (lab.bridge_name(), lab.netns_name("lb1")) != before


def test_nat_covers_the_fleets_network_leaving_by_any_interface_but_the_bridge():
    rules = lab.nat_ruleset(lab.ipaddress.IPv4Network("198.18.0.0/24"), "wtlab-12345678")
    assert "delete table ip" in rules and 'ip saddr 198.18.0.0/24 oifname != "wtlab-12345678" masquerade' in rules


def test_a_host_in_two_groups_carries_its_vars_once():
    children = lab.build_inventory(fleet(solo=lb(groups=["haproxy", "wt"], vars={"wt_instances": 1})),
                                   KEY)["all"]["children"]
    assert children["haproxy"]["hosts"]["solo"]["wt_instances"] == 1
    assert children["wt"]["hosts"] == {"solo": None}


def test_rendered_inventory_is_yaml_with_a_header(tmp_path):
    parsed = fleet(lb1=lb(), app1=app(1))
    text = lab.render_inventory(parsed, KEY)
    assert text.startswith("# Written by tests/lab/lab.py from test.yml")
    assert yaml.safe_load(text) == lab.build_inventory(parsed, KEY)


def test_etc_hosts_names_every_fleet_host():
    text = lab.etc_hosts(fleet(lb1=lb(), app1=app(1)))
    assert "127.0.0.1\tlocalhost" in text
    assert "127.0.10.1\tlb1\n127.0.10.2\tapp1\n" in text


# ----------------------------------------------------------------------------- image recipe

HOST_PIP_CONF = """\
[global]
find-links = /opt/wheels
extra-index-url = file:///opt/pypi/simple https://mirror.example/simple
cert = /etc/ssl/certs/ca-certificates.crt
timeout = 60
"""


def test_container_pip_conf_keeps_only_what_exists_in_a_container():
    conf = lab.container_pip_conf([HOST_PIP_CONF, "[global]\nfind-links = /opt/more\n"])
    assert conf == ("[global]\n"
                    "cert = /etc/ssl/certs/ca-certificates.crt\n"
                    "extra-index-url = https://mirror.example/simple\n"
                    "timeout = 60\n")


def test_container_pip_conf_without_host_config_still_trusts_the_system_bundle():
    assert lab.container_pip_conf([]) == "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"
    assert lab.container_pip_conf(["not an ini file"]) == lab.container_pip_conf([])


def test_recipe_hash_is_stable_and_covers_every_input():
    base = lab.image_recipe("trixie", {"a.crt": "1"}, "[global]\n")
    assert lab.recipe_hash(base) == lab.recipe_hash(lab.image_recipe("trixie", {"a.crt": "1"}, "[global]\n"))
    variants = [
        lab.image_recipe("bookworm", {"a.crt": "1"}, "[global]\n"),
        lab.image_recipe("trixie", {"a.crt": "2"}, "[global]\n"),
        lab.image_recipe("trixie", {"a.crt": "1"}, "[global]\ntimeout = 5\n"),
        {**base, "packages": base["packages"] + ["vim"]},
        {**base, "version": base["version"] + 1},
    ]
    assert len({lab.recipe_hash(v) for v in variants} | {lab.recipe_hash(base)}) == len(variants) + 1


def test_recipe_names_the_required_packages():
    recipe = lab.image_recipe("trixie", {}, "")
    for package in ("systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-venv",
                    "ca-certificates", "iproute2", "procps", "curl", "sudo"):
        assert package in recipe["packages"]
    assert "haproxy" in recipe["prefetch"]


# ----------------------------------------------------------------------------- command line

def test_up_and_down_refuse_to_run_without_root(monkeypatch, capsys):
    monkeypatch.setattr(lab.os, "geteuid", lambda: 1000)
    assert lab.main(["up"]) == 2
    assert lab.main(["down"]) == 2
    assert "must run as root" in capsys.readouterr().err


def test_a_bad_fleet_file_exits_2_before_touching_anything(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(lab.os, "geteuid", lambda: 0)
    monkeypatch.setattr(lab, "ensure_tools", lambda: pytest.fail("must validate the fleet first"))
    bad = tmp_path / "bad.yml"
    bad.write_text("hosts: {lb1: {address: 10.0.0.1, groups: [haproxy]}}\n")
    assert lab.main(["up", "--fleet", str(bad)]) == 2
    assert "127.0.0.0/8" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the scale fleet

_scale_spec = importlib.util.spec_from_file_location("wtstack_scale_fleet", LAB_PY.parent / "scale_fleet.py")
scale_fleet = importlib.util.module_from_spec(_scale_spec)
_scale_spec.loader.exec_module(scale_fleet)


def test_the_scale_fleet_file_is_the_generators_default_output():
    """Regenerate it with tests/lab/scale_fleet.py -o tests/lab/fleets/scale.yml rather than edit it."""
    assert (LAB_PY.parent / "fleets/scale.yml").read_text() == scale_fleet.render()


@pytest.mark.parametrize("app_hosts, instances", [(1, 1), (8, 3), (24, 2), (200, 16)])
def test_a_scale_fleet_of_any_size_is_a_valid_lab_fleet(app_hosts, instances):
    parsed = lab.parse_fleet(yaml.safe_load(scale_fleet.render(app_hosts, instances, "127.0.13.0/24")), "scale")
    assert [(host.name, host.suite, host.groups) for host in parsed.hosts[:2]] == [
        ("lb1", "trixie", ("haproxy",)), ("lb2", "bookworm", ("haproxy",))]
    apps = parsed.hosts[2:]
    assert [host.name for host in apps] == [f"app{n}" for n in range(1, app_hosts + 1)]
    assert {host.hostvars["wt_instances"] for host in apps} == {instances}
    assert {host.suite for host in apps} == {"trixie"}
    assert apps[0].address == "127.0.13.11" and apps[-1].address == f"127.0.13.{10 + app_hosts}"


@pytest.mark.parametrize("arguments, message", [
    ((300, 2, "127.0.12.0/24"), "no room for 300 app hosts"),
    ((2, 2, "10.0.0.0/24"), "lab hosts live in 127.0.0.0/8"),
    ((0, 2, "127.0.12.0/24"), "at least 1"),
])
def test_a_scale_fleet_that_cannot_be_is_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        scale_fleet.scale_fleet(*arguments)


# ----------------------------------------------------------------------------- phantom app hosts

_phantom_spec = importlib.util.spec_from_file_location("wtstack_phantom_inventory",
                                                       LAB_PY.parent / "phantom_inventory.py")
phantom_inventory = importlib.util.module_from_spec(_phantom_spec)
_phantom_spec.loader.exec_module(phantom_inventory)


def test_phantom_hosts_fill_a_lab_inventory_up_to_the_fleet_size_asked_for():
    rolling = lab.parse_fleet(yaml.safe_load((REPO / "tests/e2e/fleet-rolling.yml").read_text()), "rolling")
    document = phantom_inventory.phantom_inventory(lab.build_inventory(rolling, Path("/k")), 100, 1000,
                                                   "127.0.41.0/24")
    hosts = document["all"]["children"]["wt"]["hosts"]
    assert len(hosts) == 100 and list(hosts)[:8] == [f"roll-app{n}" for n in range(1, 9)]
    assert sum(host["wt_instances"] for host in hosts.values()) == 1000
    phantoms = [host for name, host in hosts.items() if name.startswith("phantom")]
    assert {host["wt_instances"] for host in phantoms} == {10, 11}
    assert phantoms[0]["ansible_host"] == "127.0.41.1" and phantoms[-1]["ansible_host"] == "127.0.41.92"
    assert list(document["all"]["children"]["haproxy"]["hosts"]) == ["roll-lb1", "roll-lb2"]
    topology = build_topology({"all": [*document["all"]["children"]["haproxy"]["hosts"], *hosts],
                               "haproxy": list(document["all"]["children"]["haproxy"]["hosts"]), "wt": list(hosts)},
                              {**document["all"]["children"]["haproxy"]["hosts"], **hosts})
    assert len(topology.instances) == 1000


def test_phantom_hosts_that_do_not_fit_are_refused():
    rolling = lab.parse_fleet(yaml.safe_load((REPO / "tests/e2e/fleet-rolling.yml").read_text()), "rolling")
    with pytest.raises(ValueError, match="no room for phantom hosts"):
        phantom_inventory.phantom_inventory(lab.build_inventory(rolling, Path("/k")), 8, 1000, "127.0.41.0/24")
    with pytest.raises(ValueError, match="room for 14 phantom hosts"):
        phantom_inventory.phantom_inventory(lab.build_inventory(rolling, Path("/k")), 100, 1000, "127.0.41.0/28")


# ----------------------------------------------------------------------------- inotify instances

def test_the_inotify_limit_is_raised_only_when_the_hosts_to_boot_need_it(tmp_path, monkeypatch):
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    monkeypatch.setattr(lab, "INOTIFY_LIMIT", limit)
    monkeypatch.setattr(lab, "inotify_instances_in_use", lambda: 60)
    lab.ensure_inotify_instances(6)  # 60 + 60 fit under 128
    assert limit.read_text() == "128\n"
    lab.ensure_inotify_instances(26)  # 60 + 260 do not
    assert int(limit.read_text()) == 1024
    lab.ensure_inotify_instances(200)
    assert int(limit.read_text()) == 2 * (60 + 2000)


class ReadOnlyLimit:
    """/proc/sys/fs/inotify/max_user_instances where it cannot be written (a container, say)."""

    def exists(self):
        return True

    def read_text(self):
        return "128\n"

    def write_text(self, text):
        raise PermissionError(13, "Permission denied")


def test_an_inotify_limit_that_cannot_be_raised_says_how(monkeypatch):
    monkeypatch.setattr(lab, "INOTIFY_LIMIT", ReadOnlyLimit())
    monkeypatch.setattr(lab, "inotify_instances_in_use", lambda: 100)
    with pytest.raises(lab.LabError, match=r"over the limit of 128 \(Permission denied\); raise it: "
                                           r"sysctl -w fs.inotify.max_user_instances=1024"):
        lab.ensure_inotify_instances(10)


# ----------------------------------------------------------------------------- a killed run's network


def test_a_stopped_labs_bridge_holding_the_network_gives_way_and_a_running_one_does_not(monkeypatch):
    """A run killed before `lab.py down` (CI's machine keeps it) leaves another checkout's bridge holding
    the fleet's network; with nothing running in that lab, `up` removes it instead of refusing."""
    if os.geteuid() != 0:
        pytest.skip("needs root: it makes a bridge and a network namespace")
    if not shutil.which("ip"):
        pytest.skip("missing tool: ip (apt-get install iproute2)")
    network = lab.ipaddress.IPv4Network("198.18.254.0/24")
    stale, netns = "wtlab-0badcafe", "wtlab-0badcafe-host1"
    try:
        subprocess.run(["ip", "link", "add", stale, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", "198.18.254.1/24", "dev", stale], check=True)
        subprocess.run(["ip", "netns", "add", netns], check=True)
        monkeypatch.setattr(lab, "cgroup_pids", lambda cgroup: [1] if cgroup.name == "0badcafe" else [])
        monkeypatch.setattr(lab, "cgroup2_root", lambda: Path("/sys/fs/cgroup"))
        lab.remove_stale_labs(network)  # its lab runs (a process in its cgroup): left alone
        assert lab.link_exists(stale) and (lab.NETNS_DIR / netns).exists()
        monkeypatch.setattr(lab, "cgroup_pids", lambda cgroup: [])
        lab.remove_stale_labs(network)
        assert not lab.link_exists(stale) and not (lab.NETNS_DIR / netns).exists()
    finally:
        subprocess.run(["ip", "netns", "delete", netns], capture_output=True, check=False)
        subprocess.run(["ip", "link", "delete", stale], capture_output=True, check=False)
