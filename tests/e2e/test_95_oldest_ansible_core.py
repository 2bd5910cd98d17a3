"""The oldest supported ansible-core (requirements-oldest.txt, `make compat` builds .venv-oldest) drives the
lab too: it converges the fleet the newest one converged with changed=0, and rolls an instance.

It sets up the state it needs itself: its first run converges the fleet to the lab's inventory, whatever
another test left on the shared lab (instances added or removed, another release), so it passes alone
(`pytest tests/e2e/test_95_oldest_ansible_core.py`) as in the whole run. `make test` builds .venv-oldest
(compat) before the end-to-end tests, so a missing one is a failure, not a skip.
"""

import re
import subprocess

from conftest import REPO

OLDEST_BIN = REPO / ".venv-oldest/bin"


def oldest_version():
    """The pinned oldest version, checked against what .venv-oldest runs."""
    assert (OLDEST_BIN / "ansible-playbook").exists(), "no .venv-oldest: run `make compat` first"
    pinned = re.search(r"^ansible-core==(\S+)", (REPO / "requirements-oldest.txt").read_text(), re.M).group(1)
    reported = subprocess.run([str(OLDEST_BIN / "ansible-playbook"), "--version"], capture_output=True, text=True,
                              check=False)
    assert f"[core {pinned}]" in reported.stdout, reported.stdout
    return pinned


def test_oldest_ansible_core_converges_idempotently_and_rolls(lab, converged):
    version = oldest_version()
    first = lab.topology.instances[0]
    site = lab.playbook("wtstack.fleet.site", "-e", "haproxy_retire_drain_timeout=3", bin_dir=OLDEST_BIN)
    assert site.returncode == 0, site.output[-6000:]
    again = lab.playbook("wtstack.fleet.site", bin_dir=OLDEST_BIN)
    assert again.returncode == 0, again.output[-6000:]
    changed = {host: counts["changed"] for host, counts in again.recap().items()}
    assert set(changed.values()) == {0}, f"ansible-core {version}: second run changed {changed}"

    roll = lab.playbook("wtstack.fleet.rolling_restart", "--limit", first.host,
                        "-e", f'{{"rolling_restart_servers": ["{first.server_name}"]}}',
                        "-e", "rolling_restart_drain_timeout=3", bin_dir=OLDEST_BIN)
    assert roll.returncode == 0, roll.output[-6000:]
    for lb in lab.topology.lb_hosts:
        assert set(lab.server_status(lb).values()) == {"UP"}
    print(f"\nansible-core {version}: site {site.seconds:.0f}s, idempotent re-run {again.seconds:.0f}s "
          f"(changed=0 on every host), roll of {first.server_name} {roll.seconds:.0f}s")
