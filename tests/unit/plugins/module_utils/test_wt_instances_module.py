"""The wt_instances module's run, with a scripted systemctl (no systemd, no Ansible)."""

import grp
import os
import pwd
import socket

from ansible_collections.wtstack.fleet.plugins.module_utils.wt_instances_module import run_wt_instances_module

ME, MY_GROUP = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


class Systemctl:
    """`systemctl show` answers from ``shown``; every other command succeeds; all are recorded."""

    def __init__(self, shown=""):
        self.shown, self.calls = shown, []

    def __call__(self, argv):
        self.calls.append(argv)
        return (0, self.shown, "") if argv[1] == "show" else (0, "", "")


def params(settings_dir, *ports, **extra):
    base = dict(instances=[dict(port=port, listen_address="127.0.0.1", settings=f"port {port}\n", release=None)
                           for port in ports],
                settings_dir=str(settings_dir), settings_owner=ME, settings_group=MY_GROUP, settings_mode="0640",
                restart_all=False, restart_on_change=True, unit_file_changed=False, runtime_files=[],
                runtime_trees=[], prune=False, restart_timeout=0.3, releases_dir=None, links_dir=None,
                release_files=[], release_trees=[], releases_kept=2, changed_releases=[])
    return dict(base, **extra)


def running(*ports):
    return "\n\n".join(f"Id=wt@{port}.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n"
                       f"ExecMainStartTimestamp=@{10 ** 10}" for port in ports)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_check_mode_reports_what_a_fresh_host_needs_and_changes_nothing(tmp_path):
    runner = Systemctl()
    failed, msg, result = run_wt_instances_module(params(tmp_path, 9090, 9091), runner, check_mode=True, diff=True)
    assert not failed and result["changed"] is True
    assert result["written"] == [9090, 9091] and result["started"] == ["wt@9090.service", "wt@9091.service"]
    assert result["diff"][-1]["prepared"].startswith("write 9090.env\n")
    assert os.listdir(tmp_path) == [] and all(argv[1] == "show" for argv in runner.calls)


def test_a_fresh_host_gets_its_files_and_units(tmp_path):
    runner = Systemctl()
    failed, msg, result = run_wt_instances_module(params(tmp_path, 9090), runner)
    assert not failed and (tmp_path / "9090.env").read_text() == "port 9090\n"
    assert oct((tmp_path / "9090.env").stat().st_mode & 0o777) == "0o640"
    assert [argv[1:] for argv in runner.calls[1:]] == [["start", "wt@9090.service"], ["enable", "wt@9090.service"]]


def test_a_restart_that_does_not_come_back_ends_the_run_and_names_the_others(tmp_path):
    first, second = free_port(), free_port()
    for port in (first, second):
        (tmp_path / f"{port}.env").write_text(f"port {port}\n")
        os.chmod(tmp_path / f"{port}.env", 0o640)
    runner = Systemctl(shown=running(first, second))
    failed, msg, result = run_wt_instances_module(params(tmp_path, first, second, restart_all=True), runner)
    assert failed and result["restarted"] == [f"wt@{first}.service", f"wt@{second}.service"]
    assert msg.startswith(f"wt@{first}.service was restarted but accepts no connection on 127.0.0.1:{first} "
                          "after 0.3 s")
    assert msg.endswith(f"Not restarted, so still running as before: wt@{second}.service.")
    assert [argv[1:] for argv in runner.calls[1:]] == [["reset-failed", f"wt@{first}.service"],
                                                       ["restart", f"wt@{first}.service"]]


def test_contradicting_options_fail_before_the_host_is_read(tmp_path):
    runner = Systemctl()
    failed, msg, result = run_wt_instances_module(params(tmp_path, 9090, 9090), runner)
    assert failed and msg == "instances: a port is listed twice: [9090, 9090]" and runner.calls == []
    failed, msg, dummy = run_wt_instances_module(params(tmp_path, 9090, settings_mode="rw"), runner)
    assert failed and msg.startswith("settings_mode: 'rw' is not an octal file mode")


def test_a_release_for_every_instance_that_names_none(tmp_path):
    releases, links = tmp_path / "releases", tmp_path / "instances"
    (releases / "1.0").mkdir(parents=True)
    settings = tmp_path / "settings"
    settings.mkdir()
    instances = [dict(port=9090, listen_address="127.0.0.1", settings="a\n", release=None),
                 dict(port=9091, listen_address="127.0.0.1", settings="b\n", release="0.9")]
    failed, msg, result = run_wt_instances_module(
        params(settings, instances=instances, release="1.0", releases_dir=str(releases), links_dir=str(links)),
        Systemctl(), check_mode=True)
    assert not failed and result["linked"] == {"9090": "1.0", "9091": "0.9"}


def test_an_instance_without_settings_is_refused(tmp_path):
    instances = [dict(port=9090, listen_address="127.0.0.1", settings=None, release=None)]
    failed, msg, dummy = run_wt_instances_module(params(tmp_path, instances=instances), Systemctl())
    assert failed and msg == "instances: no settings for port 9090; give settings or settings_template"
