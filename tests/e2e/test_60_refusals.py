"""What the fleet refuses: an invalid HAProxy snippet changes nothing; instances answer only on their address."""

import socket

from wt_http import get


def test_invalid_extra_config_is_rejected_and_nothing_changes(lab, converged):
    lb = lab.topology.lb_hosts[0]
    files = "/etc/haproxy/haproxy.cfg /etc/haproxy/wt-sessions.map"
    before = lab.ssh(lb, f"sha256sum {files}; systemctl show -p MainPID --value haproxy")
    run = lab.playbook("site.yml", "--limit", lb, "-e", "haproxy_extra_config='bogus-directive on'")
    assert run.returncode != 0
    assert "bogus-directive" in run.output and "unknown keyword" in run.output, run.output[-3000:]
    after = lab.ssh(lb, f"sha256sum {files}; systemctl show -p MainPID --value haproxy")
    assert after == before, "the live configuration or the HAProxy process changed"
    assert get(lab.url(lb) + "/health")[0] == 200
    print(f"\ninvalid snippet refused; checksums and master pid unchanged:\n{after}")


def test_instances_listen_only_on_their_configured_address(lab, converged):
    instance = lab.topology.instances[0]
    with socket.create_connection((instance.connect_address, instance.port), timeout=5):
        pass
    for other in ("127.0.0.1", "127.0.10.250"):
        try:
            socket.create_connection((other, instance.port), timeout=5).close()
        except ConnectionRefusedError:
            continue
        raise AssertionError(f"{instance.server_name} also answers on {other}:{instance.port}")


def test_missing_application_command_is_refused_before_any_instance_changes(lab, converged):
    host = lab.topology.app_hosts[0]
    units = " ".join(instance.unit_name for instance in lab.topology.instances_on(host))
    state = (f"sha256sum /etc/wtstack/wt/app.env /etc/wtstack/wt/instances/*.env /etc/systemd/system/wt@.service; "
             f"systemctl show -p MainPID --value {units}")
    before = lab.ssh(host, state)
    run = lab.playbook("site.yml", "--limit", host, "-e", "wt_app_command=/opt/wtstack/app/no-such-program.wt")
    assert run.returncode != 0
    assert (f'{host}: wt_app_command: "/opt/wtstack/app/no-such-program.wt" is missing on this host'
            in " ".join(run.output.split())), run.output[-3000:]
    assert lab.ssh(host, state) == before, "an instance's files, unit or process changed"
    print(f"\nmissing command refused on {host}; settings, unit and {len(units.split())} instance pids unchanged")


UBUNTU = ('PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION="24.04.1 LTS (Noble Numbat)"\n'
          "VERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\n")


def test_an_unsupported_system_is_refused_before_anything_changes(lab, converged):
    """Both roles ask the host what it runs before their first change (wt_app in the read it makes anyway,
    haproxy from the facts its play gathers) and refuse anything but Debian 12 and 13, naming those."""
    lb, app = lab.topology.lb_hosts[0], lab.topology.app_hosts[0]
    units = " ".join(instance.unit_name for instance in lab.topology.instances_on(app))
    state = {lb: "sha256sum /etc/haproxy/haproxy.cfg /etc/haproxy/wt-sessions.map; "
                 "systemctl show -p MainPID --value haproxy",
             app: "sha256sum /etc/wtstack/wt/app.env /etc/wtstack/wt/instances/*.env /etc/systemd/system/wt@.service; "
                  f"systemctl show -p MainPID --value {units}"}
    before = {host: lab.ssh(host, command) for host, command in state.items()}
    for host in state:  # /etc/os-release is a link to /usr/lib/os-release: keep the link, put a file in its place
        lab.ssh(host, "cp -P /etc/os-release /etc/os-release.e2e && rm /etc/os-release && cat > /etc/os-release",
                stdin=UBUNTU)
    try:  # one run per host: a play whose every host failed ends the playbook
        runs = {host: lab.playbook("site.yml", "--limit", host) for host in state}
    finally:
        for host in state:
            lab.ssh(host, "mv -f -T /etc/os-release.e2e /etc/os-release")
    expected = {app: f"{app}: this host runs Ubuntu 24.04.1 LTS, which the wt_app role does not support",
                lb: f"{lb}: this host runs Ubuntu 24.04, which the haproxy role does not support"}
    for host, run in runs.items():
        assert run.returncode != 0
        message = f"{expected[host]}; it supports Debian 12 and 13. Nothing was changed."
        assert message in " ".join(run.output.split()), run.output[-4000:]
        assert run.recap()[host]["changed"] == 0 and run.recap()[host]["failed"] == 1, run.recap()
    assert {host: lab.ssh(host, command) for host, command in state.items()} == before
    print(f"\nUbuntu 24.04 refused on {lb} (haproxy) and {app} (wt_app); files and processes unchanged")
