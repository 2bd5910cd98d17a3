"""site.yml converges the fresh lab, and converging again changes nothing."""

import base64
import re
import shlex


def test_first_run_converges_every_host(lab, converged):
    recap = converged.recap()
    assert set(recap) >= set(lab.topology.lb_hosts) | set(lab.topology.app_hosts)
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in recap.values()), recap


def test_second_run_changes_nothing(lab, converged):
    """From the checkout, after the installed collection converged: the two agree to the byte."""
    run = lab.playbook("site.yml")
    assert run.returncode == 0, run.output[-6000:]
    recap = run.recap()
    print(f"\nidempotent site.yml took {run.seconds:.0f}s: {recap}")
    assert {host: counts["changed"] for host, counts in recap.items() if counts["changed"]} == {}, run.output[-6000:]


def test_check_mode_reports_nothing_to_change(lab, converged):
    run = lab.playbook("site.yml", "--check", "--diff")
    assert run.returncode == 0, run.output[-6000:]
    assert all(counts["changed"] == 0 for counts in run.recap().values()), run.output[-6000:]


def test_every_instance_unit_is_active_and_enabled(lab, converged):
    for host in lab.topology.app_hosts:
        units = [instance.unit_name for instance in lab.topology.instances_on(host)]
        states = lab.ssh(host, "systemctl is-active " + " ".join(units)).split()
        enabled = lab.ssh(host, "systemctl is-enabled " + " ".join(units)).split()
        assert states == ["active"] * len(units), (host, states)
        assert enabled == ["enabled"] * len(units), (host, enabled)


def test_both_target_releases_are_covered(lab, converged):
    """lb1 runs Debian 13 (HAProxy 3.0), lb2 Debian 12 (HAProxy 2.6): one run proves both."""
    versions = {lb: lab.ssh(lb, "haproxy -v").split()[2] for lb in lab.topology.lb_hosts}
    releases = {lb: lab.ssh(lb, ". /etc/os-release && echo $VERSION_CODENAME").strip() for lb in versions}
    print(f"\nload balancers: {releases} running HAProxy {versions}")
    assert {version.split(".")[0] + "." + version.split(".")[1] for version in versions.values()} == {"2.6", "3.0"}
    assert set(releases.values()) == {"bookworm", "trixie"}


def test_units_verify_and_are_hardened_on_the_hosts(lab, converged):
    """systemd-analyze on the app hosts themselves (Debian 13's systemd): verify, and exposure <= 2.0."""
    scores = {}
    for host in lab.topology.app_hosts:
        for instance in lab.topology.instances_on(host):
            verify = lab.ssh(host, f"systemd-analyze verify {instance.unit_name} 2>&1; echo rc=$?")
            assert verify.strip().endswith("rc=0") and instance.unit_name not in verify, verify
            security = lab.ssh(host, f"systemd-analyze security --no-pager {instance.unit_name}")
            exposure = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security)
            assert exposure, security[-500:]
            scores[f"{host}/{instance.unit_name}"] = float(exposure.group(1))
    print(f"\nsystemd-analyze security exposure: {sorted(set(scores.values()))} over {len(scores)} units")
    assert max(scores.values()) <= 2.0, scores


def test_plan_shows_byte_for_byte_what_site_wrote(lab, converged, tmp_path):
    """playbooks/plan.yml (one plan_files task per host) renders exactly the files, and modes, that
    site.yml's modules wrote on every host: the template module's and wt_instances' settings files."""
    run = lab.playbook("playbooks/plan.yml", "-e", f"plan_dir={tmp_path}")
    assert run.returncode == 0, run.output[-4000:]
    compared = 0
    for host_dir in sorted(path for path in tmp_path.iterdir() if path.is_dir()):
        planned = {"/" + str(path.relative_to(host_dir)): path for path in host_dir.rglob("*") if path.is_file()}
        script = "".join(f"stat -c %a {shlex.quote(dest)}; base64 -w0 {shlex.quote(dest)}; echo\n" for dest in planned)
        lines = lab.ssh(host_dir.name, script).splitlines()
        for (dest, path), mode, encoded in zip(planned.items(), lines[0::2], lines[1::2]):
            assert base64.b64decode(encoded) == path.read_bytes(), f"{host_dir.name}:{dest} differs from the plan"
            assert int(mode, 8) == path.stat().st_mode & 0o7777, f"{host_dir.name}:{dest}: mode {mode}"
            compared += 1
    print(f"\nplan.yml matched {compared} files on {len(list(tmp_path.iterdir()))} hosts")
    assert compared >= 3 * len(lab.topology.lb_hosts) + 3 * len(lab.topology.app_hosts) + len(lab.topology.instances)
