"""The wt_app role run on this machine in check mode: its decisions, taken on one read of the host, and
the settings the wt_instances action renders, without a lab.

A local connection, `--check --diff`, the role's paths under a temporary directory and a stand-in
systemctl that knows no unit: the host_state read, the host's checks (wt_app_host_problems), what
differs (host_differences), the directory, file and account tasks that follow from it, and the
wt_instances action rendering each instance's settings before its module runs. Nothing is written;
each instance's settings are what plan.yml renders for it.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SUPPORTED = ("12", "13")


def debian_release():
    try:
        fields = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    except OSError:
        return None
    return fields.get("VERSION_ID", "").strip('"') if fields.get("ID") == "debian" else None


@pytest.fixture
def machine():
    if os.geteuid() != 0:
        pytest.skip("needs root: the wt_app role reads accounts and paths as root, even in check mode")
    if not shutil.which("dpkg-query"):
        pytest.skip("missing tool: dpkg-query (the role reads packages with it: Debian)")
    if debian_release() not in SUPPORTED:
        pytest.skip(f"the wt_app role runs on Debian {' and '.join(SUPPORTED)} only, not on this machine")


def write_inventory(tmp_path):
    app = {"ansible_host": "127.0.0.1", "ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3",
           "wt_instances": [{"port": 9090}, {"port": 9091, "prefix": "own-"}], "wt_app_command": "/bin/true",
           "wt_app_root": str(tmp_path / "opt"), "wt_app_install_dir": str(tmp_path / "opt/app"),
           "wt_app_docroot": str(tmp_path / "opt/docroot"), "wt_app_approot": str(tmp_path / "opt/approot"),
           "wt_app_config_dir": str(tmp_path / "etc"), "wt_app_version": "1.0"}
    inventory = {"all": {"children": {"haproxy": {"hosts": {"lb1": {"ansible_host": "198.51.100.10"}}},
                                      "wt": {"hosts": {"app1": app}}}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


def run(tmp_path, *args):
    stand_in = tmp_path / "bin"
    stand_in.mkdir(exist_ok=True)
    (stand_in / "systemctl").write_text("#!/bin/sh\n# systemd, knowing no wt@ unit\nexit 0\n")
    (stand_in / "systemctl").chmod(0o755)
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
           "PATH": f"{stand_in}:{os.environ['PATH']}"}
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(write_inventory(tmp_path)), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)


def added_lines(output, path):
    """The lines a --diff of the file at `path` adds (the whole file, for a new one)."""
    match = re.search(rf"^\+\+\+ after: {re.escape(path)}\n(?:@@.*\n)((?:\+.*\n)*)", output, re.M)
    assert match, f"no diff of {path}"
    return "".join(line[1:] + "\n" for line in match.group(1).splitlines())


def test_the_role_decides_on_one_read_renders_each_instance_and_changes_nothing(machine, tmp_path):
    playbook = tmp_path / "wt_app.yml"
    playbook.write_text(yaml.safe_dump([
        {"name": "Topology", "ansible.builtin.import_playbook": str(REPO / "playbooks/topology.yml")},
        {"name": "wt_app", "hosts": "app1", "gather_facts": False,
         "tasks": [{"ansible.builtin.import_role": {"name": "wtstack.fleet.wt_app"},
                    "vars": {"wtstack_topology": "{{ hostvars['localhost']['wtstack_topology'] }}"}}]}]))
    result = run(tmp_path, str(playbook), "--check", "--diff")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(r"^app1\s+: ok=\d+\s+changed=[1-9]\d*\s+unreachable=0\s+failed=0", output, re.M), output[-2000:]
    for directory in ("opt", "opt/releases/1.0", "opt/releases/1.0/app", "etc", "etc/instances"):
        assert f"(item={tmp_path / directory})" in output, directory
    assert not (tmp_path / "opt").exists() and not (tmp_path / "etc").exists()
    for line in ("write 9090.env", "write 9091.env", "link instance 9090 to release 1.0", "start wt@9091.service"):
        assert line in output, line

    plan_dir = tmp_path / "plan"
    planned = run(tmp_path, str(REPO / "playbooks/plan.yml"), "-e", f"plan_dir={plan_dir}")
    assert planned.returncode == 0, planned.stdout[-3000:] + planned.stderr[-3000:]
    for port, prefix in ((9090, "app1-9090-"), (9091, "own-")):
        path = f"{tmp_path / 'etc/instances'}/{port}.env"
        settings = added_lines(output, path)
        assert f"WT_SESSION_ID_PREFIX={prefix}\n" in settings
        assert settings == (plan_dir / "app1" / path.lstrip("/")).read_text()
