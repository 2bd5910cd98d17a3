"""host_state without Ansible: paths, dpkg's answer, accounts, a virtualenv's requirement, python3."""

import hashlib
import os
import sys

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils import host_state as hs
from ansible_collections.wtstack.fleet.plugins.modules import host_state as host_state_module


def test_a_regular_file_is_read_like_the_template_module_sees_it(tmp_path):
    path = tmp_path / "app.env"
    path.write_bytes(b"A=1\n")
    os.chmod(path, 0o600)
    state = hs.path_state(str(path))
    assert state == {"exists": True, "type": "file", "mode": "0600", "owner": hs.user_name(os.getuid()),
                     "group": hs.group_name(os.getgid()), "checksum": hashlib.sha1(b"A=1\n").hexdigest(),
                     "target_type": "file", "executable": False}


def test_a_directory_a_link_and_nothing(tmp_path):
    assert hs.path_state(str(tmp_path))["type"] == "directory"
    assert hs.path_state(str(tmp_path / "missing")) == {"exists": False}
    program = tmp_path / "app.wt"
    program.write_text("#!/bin/sh\n")
    os.chmod(program, 0o755)
    (tmp_path / "link").symlink_to(program)
    link = hs.path_state(str(tmp_path / "link"))
    assert (link["type"], link["target_type"], link["executable"]) == ("link", "file", True)
    assert "checksum" not in link
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    assert hs.path_state(str(tmp_path / "dangling"))["target_type"] is None


def test_dpkg_query_output_gives_installed_packages():
    out = "python3-venv installed\npython3-packaging not-installed\nlibwt-dev:amd64 installed\n"
    calls = []

    def run(argv):
        calls.append(argv)
        return 1, out, "dpkg-query: no packages found matching nosuch\n"

    states = hs.package_states(run, ["python3-venv", "python3-packaging", "libwt-dev", "nosuch"])
    assert states == {"python3-venv": True, "python3-packaging": False, "libwt-dev": True, "nosuch": False}
    assert len(calls) == 1 and calls[0][-4:] == ["python3-venv", "python3-packaging", "libwt-dev", "nosuch"]
    assert hs.package_states(run, []) == {} and len(calls) == 1


def test_accounts_are_read_from_the_system_databases():
    root = hs.user_state("root")
    assert root["exists"] and root["uid"] == 0 and root["home"] == "/root"
    assert hs.user_state("no-such-user-here") == {"exists": False}
    assert hs.group_state("root") == {"exists": True, "gid": 0}
    assert hs.group_state("no-such-group-here") == {"exists": False}


def make_venv(root, *distributions):
    """A virtualenv as pip's check sees it: bin/activate and dist-info METADATA files."""
    (root / "bin").mkdir(parents=True)
    (root / "bin/activate").write_text("")
    site = root / "lib/python3.13/site-packages"
    for name, version, *requires in distributions:
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        lines += [f"Requires-Dist: {requirement}" for requirement in requires]
        (info / "METADATA").write_text("\n".join(lines) + "\n\nlong description: not a header\n")
    return str(root)


def test_a_pinned_requirement_that_is_installed_is_satisfied(tmp_path):
    venv = make_venv(tmp_path / "venv", ("witty_for_python", "0.1.2", 'pytest>=8; extra == "test"'))
    assert hs.requirement_state(venv, "witty-for-python==0.1.2")["satisfied"]
    assert hs.requirement_state(venv, "Witty.For_Python>=0.1")["satisfied"]


@pytest.mark.parametrize("requirement, reason", [
    ("witty-for-python==0.1.3", "witty-for-python 0.1.2 does not satisfy 'witty-for-python==0.1.3'"),
    ("other==1.0", "other is not installed"),
    ("witty-for-python[test]==0.1.2", "has a URL or extras"),
    ("witty-for-python @ https://example.com/w.whl", "has a URL or extras"),
    ("/opt/wheels/witty.whl", "is not a requirement this can check"),
])
def test_anything_else_is_left_to_pip(tmp_path, requirement, reason):
    venv = make_venv(tmp_path / "venv", ("witty_for_python", "0.1.2"))
    state = hs.requirement_state(venv, requirement)
    assert not state["satisfied"] and reason in state["reason"]


def test_what_the_requirement_requires_must_be_installed_too(tmp_path):
    venv = make_venv(tmp_path / "venv", ("app", "1.0", "dep>=2", 'win-only; sys_platform == "win32"'), ("dep", "1.5"))
    state = hs.requirement_state(venv, "app==1.0")
    assert not state["satisfied"] and "dep 1.5 does not satisfy 'dep>=2'" in state["reason"]
    venv = make_venv(tmp_path / "venv2", ("app", "1.0", "dep>=2", 'win-only; sys_platform == "win32"'), ("dep", "2.1"))
    assert hs.requirement_state(venv, "app==1.0")["satisfied"]


def test_no_virtualenv_means_pip_would_create_one(tmp_path):
    state = hs.requirement_state(str(tmp_path / "venv"), "witty-for-python==0.1.2")
    assert not state["satisfied"] and "there is no virtualenv" in state["reason"]


def test_the_running_interpreter_answers_for_itself_and_others_are_asked(tmp_path, monkeypatch):
    asked = []

    def run(argv):
        asked.append(argv)
        return 0, "3.11\n", ""

    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    name = os.path.basename(sys.executable)
    assert hs.python_version(run, name, sys.executable, (3, 13, 1)) == "3.13" and asked == []
    other = tmp_path / "python3"
    other.write_text("#!/bin/sh\n")
    os.chmod(other, 0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert hs.python_version(run, "python3", sys.executable, (3, 13, 1)) == "3.11" and asked[0][0] == str(other)
    assert hs.python_version(run, "no-such-python", sys.executable, (3, 13, 1)) is None


DEBIAN_13 = """PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
ID=debian
HOME_URL="https://www.debian.org/"
"""


def test_os_release_is_read_from_etc_else_usr_lib(tmp_path):
    etc, usr = tmp_path / "etc-os-release", tmp_path / "usr-os-release"
    usr.write_text(DEBIAN_13)
    assert hs.os_release((str(etc), str(usr))) == {"id": "debian", "version_id": "13",
                                                   "pretty_name": "Debian GNU/Linux 13 (trixie)"}
    etc.write_text("ID=ubuntu\nVERSION_ID='24.04'\nNAME=Ubuntu\n# a comment\nnot a line\n")
    assert hs.os_release((str(etc), str(usr))) == {"id": "ubuntu", "version_id": "24.04", "pretty_name": "Ubuntu"}


def test_a_host_that_says_nothing_has_an_empty_id(tmp_path):
    assert hs.os_release((str(tmp_path / "none"),)) == {"id": "", "version_id": "", "pretty_name": "an unnamed system"}
    assert hs.parse_os_release('PRETTY_NAME="A \\"quoted\\" \\\\ name"\n') == {"PRETTY_NAME": 'A "quoted" \\ name'}


def test_the_module_reads_what_a_role_wants_and_says_what_differs(tmp_path, run_module):
    (tmp_path / "same.txt").write_text("same\n")
    os.chmod(tmp_path / "same.txt", 0o644)
    me = hs.user_state(hs.user_name(os.getuid()))
    mine = {"owner": hs.user_name(os.getuid()), "group": hs.group_name(os.getgid())}
    files = [dict(mine, src="same.j2", dest=str(tmp_path / "same.txt"), mode="0644"),
             dict(mine, dest=str(tmp_path / "new.txt"), mode="0644")]
    result = run_module(host_state_module, {
        "files": files, "checksums": [hashlib.sha1(b"same\n").hexdigest(), hashlib.sha1(b"new\n").hexdigest()],
        "directories": [str(tmp_path), str(tmp_path / "missing")],
        "directory_mode": f"{os.stat(tmp_path).st_mode & 0o7777:04o}", "directory_owner": mine["owner"],
        "directory_group": mine["group"],
        "account": {"user": mine["owner"], "group": me["group"], "home": me["home"], "shell": me["shell"]}})
    assert result["differences"] == {"missing_packages": [], "account_differs": False,
                                     "directories": [str(tmp_path / "missing")], "files": [str(tmp_path / "new.txt")],
                                     "requirements_met": True, "pending": True}
    assert result["paths"][str(tmp_path / "same.txt")]["checksum"] == hashlib.sha1(b"same\n").hexdigest()
    assert result["users"][mine["owner"]]["exists"] and result["changed"] is False


def test_the_module_refuses_files_without_their_checksums(run_module):
    file = {"dest": "/etc/x", "mode": "0644", "owner": "root", "group": "root"}
    result = run_module(host_state_module, {"files": [file]})
    assert result["failed"] and result["msg"] == "1 files but 0 checksums"
