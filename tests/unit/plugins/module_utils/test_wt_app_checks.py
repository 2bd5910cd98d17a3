"""An app host's wt_app role variables checked beyond their types, and the host against what the role
supports: every message, word for word, as tests/bad_inputs.py and the end-to-end refusals find them."""

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils.wt_app_checks import (
    SETTINGS,
    SettingsError,
    below_root,
    host_problems,
    settings_problems,
    version_tuple,
)

# The role's defaults (roles/wt_app/defaults/main.yml).
DEFAULTS = {"wt_app_command": "", "wt_app_artifact": "", "wt_app_version": "", "wt_app_root": "/opt/wtstack",
            "wt_app_install_dir": "/opt/wtstack/app", "wt_app_demo_venv": "/opt/wtstack/venv",
            "wt_app_demo_dir": "/opt/wtstack/demo"}
OWN_PROGRAM = {"wt_app_command": "/opt/wtstack/app/app.wt", "wt_app_artifact": "files/app.tar.gz"}


def problems(artifact_found=True, **overrides):
    return settings_problems("app1", {**DEFAULTS, **overrides}, artifact_found)


def test_the_defaults_and_your_own_program_are_consistent():
    assert problems() == [] and problems(**OWN_PROGRAM) == []
    assert set(DEFAULTS) == set(SETTINGS)


@pytest.mark.parametrize("overrides, expected", [
    ({"wt_app_command": "bin/app.wt"}, 'app1: wt_app_command: "bin/app.wt" is not an absolute path; give the full '
                                       "path of your Wt program on the host, such as /opt/wtstack/app/bin/myapp.wt."),
    ({"wt_app_artifact": "files/app.tar.gz"}, 'app1: wt_app_command: is empty, so the bundled demo would run and '
                                              'wt_app_artifact "files/app.tar.gz" would never be started; set '
                                              "wt_app_command to the program it installs, or remove wt_app_artifact."),
    ({"wt_app_version": "1.0 beta"}, 'app1: wt_app_version: "1.0 beta" cannot name a release directory; use up to 64 '
                                     "letters, digits, '.', '_', '-' or '+', starting with a letter or digit (such "
                                     "as 1.4.2)."),
    ({"wt_app_version": "v" * 65}, f'app1: wt_app_version: "{"v" * 65}" cannot name a release directory; use up to '
                                   "64 letters, digits, '.', '_', '-' or '+', starting with a letter or digit (such "
                                   "as 1.4.2)."),
    ({"wt_app_install_dir": "/opt/wtstack-app"}, 'app1: wt_app_install_dir: "/opt/wtstack-app" is not below '
                                                 "wt_app_root (/opt/wtstack), where each release keeps its own copy "
                                                 "of the application; put it there (the default is /opt/wtstack/app)."),
    ({"wt_app_demo_venv": "/srv/venv"}, 'app1: wt_app_demo_venv: "/srv/venv" is not below wt_app_root (/opt/wtstack), '
                                        "where each release keeps its own copy of the demo; put it there (the "
                                        "default is /opt/wtstack/venv)."),
    ({"wt_app_demo_dir": "/srv/demo"}, 'app1: wt_app_demo_dir: "/srv/demo" is not below wt_app_root (/opt/wtstack), '
                                       "where each release keeps its own copy of the demo; put it there (the default "
                                       "is /opt/wtstack/demo)."),
])
def test_each_problem_names_host_and_variable_and_says_what_to_do(overrides, expected):
    assert problems(**overrides) == [expected]


def test_an_artifact_the_controller_does_not_have():
    assert problems(artifact_found=False, **OWN_PROGRAM) == [
        'app1: wt_app_artifact: "files/app.tar.gz" is not a file on the controller; give the path of your program or '
        "archive (absolute, or relative to the playbook)."]


def test_the_demos_paths_matter_only_for_the_demo():
    assert problems(wt_app_demo_venv="/srv/venv", wt_app_demo_dir="/srv/demo", **OWN_PROGRAM) == []


def test_every_problem_at_once_in_a_fixed_order():
    found = problems(artifact_found=False, wt_app_artifact="app.wt", wt_app_version="-1", wt_app_demo_dir="/srv")
    assert [problem.split(": ")[1] for problem in found] == [
        "wt_app_command", "wt_app_version", "wt_app_demo_dir", "wt_app_artifact"]


def test_a_version_is_read_as_text():
    assert problems(wt_app_version=2) == [] and problems(wt_app_version=1.5) == []


def test_below_root_is_a_whole_path_component():
    assert below_root("/opt/wtstack", "/opt/wtstack") and below_root("/opt/wtstack/a/b", "/opt/wtstack")
    assert not below_root("/opt/wtstack2/app", "/opt/wtstack") and not below_root("/srv/x", "/opt/wtstack")
    assert below_root("/opt/wt.stack/app", "/opt/wt.stack") and not below_root("/opt/wtXstack/app", "/opt/wt.stack")


def test_settings_must_be_complete():
    with pytest.raises(SettingsError, match="settings lacks wt_app_root"):
        settings_problems("app1", {name: "" for name in SETTINGS if name != "wt_app_root"}, True)


def read(system_id="debian", version_id="13", pretty_name="Debian GNU/Linux 13 (trixie)", python="3.13"):
    return {"os_release": {"id": system_id, "version_id": version_id, "pretty_name": pretty_name},
            "python_version": python}


def test_a_supported_debian_with_a_recent_python_runs_the_demo():
    assert host_problems("app1", read(), ["12", "13"], True, "3.12") == []
    assert host_problems("app1", read(version_id="12", python="3.11"), ["12", "13"], False, "3.12") == []


def test_another_system_is_refused_naming_it():
    assert host_problems("app1", read("ubuntu", "24.04", "Ubuntu 24.04.1 LTS"), ["12", "13"], False, "3.12") == [
        "app1: this host runs Ubuntu 24.04.1 LTS, which the wt_app role does not support; it supports Debian 12 and "
        "13. Nothing was changed."]


@pytest.mark.parametrize("python, shown", [("3.11", "3.11"), (None, "(none)"), ("", "(none)")])
def test_the_demo_needs_a_recent_python(python, shown):
    assert host_problems("app1", read(version_id="12", python=python), ["12", "13"], True, "3.12") == [
        f"app1: the bundled demo app needs python3 >= 3.12 (witty-for-python), but this host has python3 {shown} "
        "(Debian 12 ships 3.11); set wt_app_command (and wt_app_artifact, wt_app_docroot, wt_app_approot) to deploy "
        "your own Wt application, or use Debian 13."]


def test_versions_compare_by_number():
    assert version_tuple("3.9") < version_tuple("3.12") < version_tuple("3.12.1") < version_tuple("4")
