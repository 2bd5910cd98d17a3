"""A big fleet's inventory around a small lab fleet: the lab's hosts plus app hosts that do not exist.

    python3 tests/lab/phantom_inventory.py [--inventory .lab/inventory.yml] [--app-hosts 100]
        [--instances 1000] [--network 127.0.41.0/24] -o FILE

Writes an Ansible inventory holding every host of the lab's inventory as it is, then *phantom* app
hosts (phantom1, phantom2, ...) until the `wt` group has --app-hosts hosts and the fleet --instances
Wt instances, spread evenly over the phantoms. A phantom's address is a loopback address of
--network where nothing listens: the load balancers, converged with this inventory, carry every
instance and see the phantoms' down (their checks are refused), and a play that contacts a phantom
fails. Measurements of the control plane use it (tests/e2e/test_97_rolling_at_scale.py,
bench/rolling_control_plane.py): the same roll of the lab's instances in an inventory of 8 hosts or
of 100.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

import yaml

WT_GROUP = "wt"


def phantom_inventory(inventory: dict, app_hosts: int, instances: int, network: str) -> dict:
    """The lab's inventory document with phantom app hosts added to the `wt` group."""
    children = inventory["all"]["children"]
    real = children[WT_GROUP]["hosts"]
    group_vars = children[WT_GROUP].get("vars") or {}

    def count(host_vars):
        spec = (host_vars or {}).get("wt_instances", group_vars.get("wt_instances", 1))
        return spec if isinstance(spec, int) else len(spec)

    real_instances = sum(count(host_vars) for host_vars in real.values())
    phantoms = app_hosts - len(real)
    if phantoms < 1 or instances - real_instances < phantoms:
        raise ValueError(f"--app-hosts {app_hosts} and --instances {instances} leave no room for phantom hosts "
                         f"beside the lab's {len(real)} hosts of {real_instances} instances")
    addresses = list(ipaddress.IPv4Network(network).hosts())
    if phantoms > len(addresses):
        raise ValueError(f"--network {network} has room for {len(addresses)} phantom hosts, not {phantoms}")
    template = next(iter(real.values())) or {}
    share, extra = divmod(instances - real_instances, phantoms)
    hosts = dict(real)
    for number in range(1, phantoms + 1):
        hosts[f"phantom{number}"] = {
            "ansible_host": str(addresses[number - 1]),
            "ansible_user": template.get("ansible_user", "root"),
            "wt_instances": share + (1 if number <= extra else 0),
        }
    document = {"all": {"children": dict(children)}}
    document["all"]["children"][WT_GROUP] = dict(children[WT_GROUP], hosts=hosts)
    return document


def write(inventory_path: Path, output: Path, app_hosts: int = 100, instances: int = 1000,
          network: str = "127.0.41.0/24") -> Path:
    document = phantom_inventory(yaml.safe_load(inventory_path.read_text()), app_hosts, instances, network)
    output.write_text(f"# {inventory_path} and phantom app hosts ({network}, never contacted); written by "
                      "tests/lab/phantom_inventory.py\n" + yaml.safe_dump(document, sort_keys=False))
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--inventory", type=Path, default=Path(".lab/inventory.yml"))
    parser.add_argument("--app-hosts", type=int, default=100)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--network", default="127.0.41.0/24", help="where the phantoms' addresses are")
    parser.add_argument("-o", "--output", type=Path, required=True)
    arguments = parser.parse_args(argv)
    try:
        write(arguments.inventory, arguments.output, arguments.app_hosts, arguments.instances, arguments.network)
    except ValueError as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
