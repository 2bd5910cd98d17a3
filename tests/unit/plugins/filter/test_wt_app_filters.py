"""The wt_app role's filters: wt_app_settings_problems, wt_app_host_problems, host_differences and
instance_settings_files, thin adapters of their module_utils."""

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.wtstack.fleet.plugins.filter import (
    host_differences,
    instance_settings_files,
    wt_app_host_problems,
    wt_app_settings_problems,
)
from ansible_collections.wtstack.fleet.plugins.module_utils.wt_app_checks import SETTINGS

REPO = Path(__file__).resolve().parents[4]
READ = {"os_release": {"id": "debian", "version_id": "12", "pretty_name": "Debian GNU/Linux 12 (bookworm)"},
        "python_version": "3.11", "paths": {"/opt/wtstack": {"exists": False}}}


@pytest.mark.parametrize("plugin", [host_differences, instance_settings_files, wt_app_host_problems,
                                    wt_app_settings_problems])
def test_registered_under_its_documented_name(plugin):
    name = plugin.__name__.rsplit(".", 1)[1]
    assert plugin.FilterModule().filters() == {name: getattr(plugin, name)}


def test_the_role_passes_the_settings_the_checks_read():
    role_vars = yaml.safe_load((REPO / "roles/wt_app/vars/main.yml").read_text())
    assert role_vars["wt_app_validated_settings"] == list(SETTINGS)


def test_settings_problems_take_ansibles_booleans():
    settings = {"wt_app_version": "", "wt_app_root": "/opt/wtstack", "wt_app_install_dir": "/opt/wtstack/app",
                "wt_app_demo_venv": "/opt/wtstack/venv", "wt_app_demo_dir": "/opt/wtstack/demo",
                "wt_app_command": "/opt/app.wt", "wt_app_artifact": "app.wt"}
    problems = wt_app_settings_problems.wt_app_settings_problems
    assert problems(settings, "app1", "False")[0].startswith('app1: wt_app_artifact: "app.wt" is not a file')
    assert problems(settings, "app1", "True") == []
    with pytest.raises(AnsibleFilterError, match="settings lacks"):
        problems({}, "app1", True)


def test_host_problems_read_the_demo_flag_as_ansible_does():
    problems = wt_app_host_problems.wt_app_host_problems
    assert problems(READ, "app1", ["12", "13"], "False", "3.12") == []
    assert problems(READ, "app1", [12, 13], "True", "3.12")[0].startswith("app1: the bundled demo app needs python3")
    with pytest.raises(AnsibleFilterError, match="KeyError"):
        problems({}, "app1", ["12"], False, "3.12")


def test_host_differences_misuse_is_explained():
    differences = host_differences.host_differences
    assert differences(READ, directories=["/opt/wtstack"])["directories_to_create"] == ["/opt/wtstack"]
    with pytest.raises(AnsibleFilterError, match="expects a host_state result"):
        differences(["/opt/wtstack"])
    with pytest.raises(AnsibleFilterError, match="/opt/other was not read"):
        differences(READ, directories=["/opt/other"])
    with pytest.raises(AnsibleFilterError, match="unexpected keyword"):
        differences(READ, account={"user": "wt"} | {"uid": 1})


def test_instance_settings_files_misuse_is_explained():
    files = instance_settings_files.instance_settings_files
    assert files([{"port": 9090}], {"src": "instance.env.j2"}, "/etc/i")[0]["dest"] == "/etc/i/9090.env"
    with pytest.raises(AnsibleFilterError, match="expects"):
        files({"port": 9090}, {"src": "instance.env.j2"}, "/etc/i")
    with pytest.raises(AnsibleFilterError, match="not an instance with a port"):
        files([{"prefix": "a-"}], {"src": "instance.env.j2"}, "/etc/i")
