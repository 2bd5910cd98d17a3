"""The lab: a real multi-host Debian fleet on this one machine.

Each host is a systemd-nspawn container booted from an overlay on a cached
debootstrap image. By default all containers share the host's network
namespace; each host owns one loopback address (127.0.10.N) and its sshd
listens only there. A fleet file with `network:` puts its hosts on a private
lab network instead: each host in its own network namespace, joined by a
bridge the lab creates, with addresses from 198.18.0.0/15, so hosts can hold
and move addresses (VRRP) as real machines do.
Ansible reaches them over SSH with a key the lab generates; the lab writes
the inventory to .lab/inventory.yml (as root) and .lab/inventory-deploy.yml
(the same hosts as the unprivileged user deploy, with sudo: become).

    lab.py up [--fleet FILE] [--timeout SECONDS]
    lab.py down
    lab.py status
    lab.py stop HOST... [--kill]       power hosts off (--kill: pull the plug)
    lab.py link HOST up|down           plug a host's network cable in or out

Runtime state lives in the repo's .lab/ (git-ignored); images are cached in
/var/cache/wtstack-lab/. See tests/lab/README.md.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

LAB_SOURCE_DIR = Path(__file__).resolve().parent
REPO_DIR = LAB_SOURCE_DIR.parents[1]
LAB_DIR = REPO_DIR / ".lab"
HOSTS_DIR = LAB_DIR / "hosts"
SSH_KEY = LAB_DIR / "ssh" / "id_ed25519"
STATE_FILE = LAB_DIR / "state.json"
INVENTORY_FILE = LAB_DIR / "inventory.yml"
# The same fleet reached as DEPLOY_USER with become (sudo), as most users reach their hosts.
DEPLOY_INVENTORY_FILE = LAB_DIR / "inventory-deploy.yml"
DEPLOY_USER = "deploy"
DEPLOY_UID = 1000
DEFAULT_FLEET = LAB_SOURCE_DIR / "fleets" / "default.yml"

CACHE_DIR = Path("/var/cache/wtstack-lab")
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
SUITES = ("bookworm", "trixie")
DEFAULT_SUITE = "trixie"

# Bump when the build steps change: the image hash covers it, so a bump rebuilds.
# 2: the account DEPLOY_USER with passwordless sudo.
RECIPE_VERSION = 2
BASE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-venv",
    "ca-certificates", "iproute2", "procps", "curl",
    # Ansible check mode of the apt module needs python3-apt on the target.
    "python3-apt",
    # become for DEPLOY_USER, who logs in unprivileged.
    "sudo",
)
# Downloaded (not installed) into the image's apt cache so role installs skip the network.
PREFETCH_PACKAGES = ("haproxy", "socat", "python3-pip")
# Units that would race a playbook for the dpkg lock at a random moment.
MASKED_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer")
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
HOST_PIP_CONFIGS = (Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"),
                    Path.home() / ".config/pip/pip.conf", Path.home() / ".pip/pip.conf")
CONTAINER_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

REQUIRED_TOOLS = {  # command -> Debian package providing it
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}
NETWORK_TOOLS = {"ip": "iproute2", "nft": "nftables"}
# RFC 2544's block for benchmarking network devices: never routed on the internet, so a lab
# network drawn from it cannot shadow a real destination of this machine.
LAB_NETWORK_SPACE = ipaddress.IPv4Network("198.18.0.0/15")
SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null")
LAB_OWNED_HOSTVARS = frozenset({
    "ansible_host", "ansible_port", "ansible_user", "ansible_connection",
    "ansible_ssh_private_key_file", "ansible_python_interpreter", "ansible_ssh_common_args", "ansible_become",
})
HAPROXY_GROUP = "haproxy"

STOP_TIMEOUT = 30.0
BOOT_TIMEOUT = 180.0


class LabError(Exception):
    """A failure the user can act on; main() prints it without a traceback."""

    exit_code = 1


class FleetError(LabError):
    exit_code = 2


class NotRootError(LabError):
    exit_code = 2


# --------------------------------------------------------------------------- fleet definition

@dataclass(frozen=True)
class Host:
    name: str
    address: str
    suite: str
    groups: tuple[str, ...]
    hostvars: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Fleet:
    source: str
    hosts: tuple[Host, ...]
    # The private lab network (each host in its own network namespace), or None: loopback hosts.
    network: ipaddress.IPv4Network | None = None
    # Variables of whole groups (group name -> variables), written as the inventory's group vars.
    group_vars: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)

    @property
    def gateway(self) -> str | None:
        """The lab bridge's own address on the private network: this machine, as the hosts see it."""
        return str(self.network.network_address + 1) if self.network else None

    def host(self, name: str) -> Host:
        return next(host for host in self.hosts if host.name == name)


HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
VARNAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FLEET_KEYS = {"suite", "hosts", "network", "group_vars"}
HOST_KEYS = {"address", "suite", "groups", "vars"}


def parse_fleet(data: Any, source: str) -> Fleet:
    """Validate a loaded fleet document; every error names the host and the key."""
    def fail(where: str, message: str) -> FleetError:
        return FleetError(f"{source}: {where}: {message}")

    if not isinstance(data, dict):
        raise fail("top level", "expected a mapping with 'hosts' (and optionally 'suite', 'network', 'group_vars')")
    unknown = sorted(set(data) - FLEET_KEYS)
    if unknown:
        raise fail("top level", f"unknown key(s) {', '.join(map(str, unknown))}; "
                                f"allowed: {', '.join(sorted(FLEET_KEYS))}")
    network = _parse_network(data["network"], lambda message: fail("network", message)) if "network" in data else None
    default_suite = data.get("suite", DEFAULT_SUITE)
    if default_suite not in SUITES:
        raise fail("suite", f"{default_suite!r} is not one of {', '.join(SUITES)}")
    hosts_data = data.get("hosts")
    if not isinstance(hosts_data, dict) or not hosts_data:
        raise fail("hosts", "expected a non-empty mapping of host name to host settings")

    hosts: list[Host] = []
    owner_of_address: dict[str, str] = {}
    for name, spec in hosts_data.items():
        if not isinstance(name, str) or not HOSTNAME_RE.match(name):
            raise fail(f"host {name!r}", "name must be a lowercase hostname label ([a-z0-9-], at most 63 characters)")
        where = f"host {name!r}"
        if not isinstance(spec, dict):
            raise fail(where, "expected a mapping with address, groups and optionally suite and vars")
        unknown = sorted(set(spec) - HOST_KEYS)
        if unknown:
            raise fail(where, f"unknown key(s) {', '.join(map(str, unknown))}; allowed: "
                              f"{', '.join(sorted(HOST_KEYS))} (extra hostvars go under 'vars')")
        address = _parse_address(spec.get("address"), network,
                                 lambda message, where=where: fail(f"{where}: address", message))
        if address in owner_of_address:
            raise fail(f"{where}: address", f"{address} is already used by host {owner_of_address[address]!r}; "
                                            "give every host its own address")
        owner_of_address[address] = name
        suite = spec.get("suite", default_suite)
        if suite not in SUITES:
            raise fail(f"{where}: suite", f"{suite!r} is not one of {', '.join(SUITES)}")
        groups = spec.get("groups")
        if not isinstance(groups, list) or not groups:
            raise fail(f"{where}: groups", "expected a non-empty list of group names, e.g. [haproxy] or [wt]")
        for group in groups:
            if not isinstance(group, str) or not VARNAME_RE.match(group) or group in ("all", "ungrouped"):
                raise fail(f"{where}: groups", f"{group!r} is not a usable Ansible group name")
        if len(set(groups)) != len(groups):
            raise fail(f"{where}: groups", "lists a group twice")
        hostvars = spec.get("vars", {}) or {}
        if not isinstance(hostvars, dict):
            raise fail(f"{where}: vars", "expected a mapping of hostvar name to value")
        for key in hostvars:
            if not isinstance(key, str) or not VARNAME_RE.match(key):
                raise fail(f"{where}: vars", f"{key!r} is not a valid variable name")
            if key in LAB_OWNED_HOSTVARS:
                raise fail(f"{where}: vars", f"{key} is set by the lab itself; remove it")
        hosts.append(Host(name=name, address=address, suite=suite, groups=tuple(groups), hostvars=dict(hostvars)))
    group_vars = _parse_group_vars({} if data.get("group_vars") is None else data["group_vars"], fail)
    return Fleet(source=source, hosts=tuple(hosts), network=network, group_vars=group_vars)


def _parse_network(value: Any, fail) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.IPv4Network(value)
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError, TypeError):
        raise fail(f"{value!r} is not an IPv4 network such as 198.18.0.0/24") from None
    if not network.subnet_of(LAB_NETWORK_SPACE):
        raise fail(f"{network} is not inside {LAB_NETWORK_SPACE} (the block set aside for benchmarking "
                   "network devices, which the lab may use without shadowing a real address); "
                   "use e.g. 198.18.0.0/24")
    if network.num_addresses < 8:
        raise fail(f"{network} is too small; use a /29 or larger, e.g. 198.18.0.0/24")
    return network


def _parse_group_vars(value: Any, fail) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        raise fail("group_vars", "expected a mapping of group name to a mapping of variables")
    for group, variables in value.items():
        if not isinstance(group, str) or not VARNAME_RE.match(group):
            raise fail("group_vars", f"{group!r} is not a usable Ansible group name")
        if not isinstance(variables, dict):
            raise fail(f"group_vars: {group}", "expected a mapping of variable name to value")
        for key in variables:
            if not isinstance(key, str) or not VARNAME_RE.match(key):
                raise fail(f"group_vars: {group}", f"{key!r} is not a valid variable name")
            if key in LAB_OWNED_HOSTVARS:
                raise fail(f"group_vars: {group}", f"{key} is set by the lab itself; remove it")
    return {group: dict(variables) for group, variables in value.items()}


def _parse_address(value: Any, network: ipaddress.IPv4Network | None, fail) -> str:
    if network is not None:
        return _parse_network_address(value, network, fail)
    if not isinstance(value, str):
        raise fail("required; an IPv4 loopback address such as 127.0.10.1")
    try:
        address = ipaddress.IPv4Address(value)
    except ipaddress.AddressValueError:
        raise fail(f"{value!r} is not an IPv4 address") from None
    if address not in ipaddress.IPv4Network("127.0.0.0/8"):
        raise fail(f"{value} is not in 127.0.0.0/8; lab hosts share this machine's network "
                   "and may only use loopback addresses")
    if address in (ipaddress.IPv4Address("127.0.0.0"), ipaddress.IPv4Address("127.0.0.1"),
                   ipaddress.IPv4Address("127.255.255.255")):
        raise fail(f"{value} is reserved (127.0.0.1 belongs to this machine); use e.g. 127.0.10.N")
    return str(address)


def _parse_network_address(value: Any, network: ipaddress.IPv4Network, fail) -> str:
    example = network.network_address + 11
    if not isinstance(value, str):
        raise fail(f"required; an address of the fleet's network {network}, such as {example}")
    try:
        address = ipaddress.IPv4Address(value)
    except ipaddress.AddressValueError:
        raise fail(f"{value!r} is not an IPv4 address") from None
    if address not in network:
        raise fail(f"{value} is not in the fleet's network {network}; use e.g. {example}")
    if address in (network.network_address, network.broadcast_address, network.network_address + 1):
        raise fail(f"{value} is reserved ({network.network_address + 1} is the lab bridge, this machine; the "
                   f"first and last addresses are the network's own); use e.g. {example}")
    return str(address)


def load_fleet(path: Path) -> Fleet:
    try:
        text = path.read_text()
    except OSError as error:
        raise FleetError(f"cannot read fleet file {path}: {error.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise FleetError(f"{path}: not valid YAML: {error}") from None
    return parse_fleet(data, str(path))


# --------------------------------------------------------------------------- inventory

def host_inventory_vars(host: Host, ssh_key: Path, fleet: Fleet | None = None, user: str = "root") -> dict[str, Any]:
    hostvars: dict[str, Any] = {
        "ansible_host": host.address,
        "ansible_user": user,
        "ansible_ssh_private_key_file": str(ssh_key.absolute()),
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args": " ".join(SSH_OPTIONS),
    }
    if user != "root":
        hostvars["ansible_become"] = True
    if HAPROXY_GROUP in host.groups and (fleet is None or fleet.network is None):
        # Every container shares this machine's network namespace: *:80 would clash.
        hostvars["haproxy_bind_address"] = host.address
        # Sharing it, HAProxy would reach the instances from 127.0.0.1, which Wt does not trust as
        # a proxy; leaving from the balancer's own address makes X-Forwarded-For count.
        hostvars["haproxy_source_address"] = host.address
    hostvars.update(host.hostvars)
    return hostvars


def build_inventory(fleet: Fleet, ssh_key: Path, user: str = "root") -> dict[str, Any]:
    """Ansible YAML inventory: a host's vars sit under the first group listing it. A user other than
    root connects unprivileged and becomes root with sudo (ansible_become)."""
    children: dict[str, dict[str, Any]] = {}
    placed: set[str] = set()
    for host in fleet.hosts:
        for group in host.groups:
            members = children.setdefault(group, {"hosts": {}})["hosts"]
            members[host.name] = None if host.name in placed else host_inventory_vars(host, ssh_key, fleet, user)
            placed.add(host.name)
    for group, variables in fleet.group_vars.items():
        children.setdefault(group, {"hosts": {}})["vars"] = dict(variables)
    return {"all": {"children": children}}


def render_inventory(fleet: Fleet, ssh_key: Path, user: str = "root") -> str:
    header = (f"# Written by tests/lab/lab.py from {fleet.source}; rewritten by every `lab.py up`.\n"
              "# Hosts are systemd-nspawn containers on this machine (see tests/lab/README.md).\n")
    if user != "root":
        header += f"# Ansible logs in as {user}, who has no privilege but passwordless sudo, and becomes root.\n"
    return header + yaml.safe_dump(build_inventory(fleet, ssh_key, user), sort_keys=False, default_flow_style=False)


def etc_hosts(fleet: Fleet) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters", "", "# lab fleet"]
    lines += [f"{host.address}\t{host.name}" for host in fleet.hosts]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- image recipe

def container_pip_conf(host_configs: list[str]) -> str:
    """The parts of the host's pip configuration that make sense inside a container.

    Local paths (find-links directories, file:// indexes) do not exist there; the
    certificate setting must point at the container's own bundle, which carries the
    host's extra CAs after update-ca-certificates.
    """
    kept: dict[str, dict[str, str]] = {}
    for text in host_configs:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text)
        except configparser.Error:
            continue
        for section in parser.sections():
            for key, value in parser.items(section):
                if key in ("index-url", "extra-index-url", "find-links"):
                    urls = [url for url in value.split() if url.startswith(("http://", "https://"))]
                    if urls:
                        kept.setdefault(section, {})[key] = " ".join(urls)
                elif key in ("trusted-host", "timeout", "retries"):
                    kept.setdefault(section, {})[key] = value.strip()
    kept.setdefault("global", {})["cert"] = CONTAINER_CA_BUNDLE
    out = []
    for section in sorted(kept, key=lambda name: (name != "global", name)):
        out.append(f"[{section}]")
        out += [f"{key} = {value}" for key, value in sorted(kept[section].items())]
        out.append("")
    return "\n".join(out)


def image_recipe(suite: str, ca_certificates: dict[str, str], pip_conf: str) -> dict[str, Any]:
    return {
        "version": RECIPE_VERSION,
        "suite": suite,
        "mirror": MIRROR,
        "security_mirror": SECURITY_MIRROR,
        "packages": list(BASE_PACKAGES),
        "prefetch": list(PREFETCH_PACKAGES),
        "masked_units": list(MASKED_UNITS),
        "ca_certificates": dict(sorted(ca_certificates.items())),
        "pip_conf": pip_conf,
    }


def recipe_hash(recipe: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def host_ca_certificates() -> dict[str, bytes]:
    if not HOST_CA_DIR.is_dir():
        return {}
    return {str(path.relative_to(HOST_CA_DIR)): path.read_bytes()
            for path in sorted(HOST_CA_DIR.rglob("*.crt")) if path.is_file()}


def host_recipe(suite: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    certificates = host_ca_certificates()
    pip_texts = [path.read_text() for path in HOST_PIP_CONFIGS if path.is_file()]
    digests = {name: hashlib.sha256(content).hexdigest() for name, content in certificates.items()}
    return image_recipe(suite, digests, container_pip_conf(pip_texts)), certificates


# --------------------------------------------------------------------------- small system helpers

def log(message: str) -> None:
    print(message, flush=True)


def run(cmd: list[str], *, check: bool = True, capture: bool = False, timeout: float | None = None,
        **kwargs) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=check, text=True, timeout=timeout,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None, **kwargs)
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or "").strip()
        raise LabError(f"command failed ({error.returncode}): {' '.join(cmd)}"
                       + (f"\n{detail}" if detail else "")) from None


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)  # console colour codes
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            raw = line.split()[4]
            points.append(re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), raw))
    return points


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below path, deepest first (the order to unmount them)."""
    root = str(path.resolve()) if path.exists() else str(path)
    found = {point for point in mount_points() if point == root or point.startswith(root.rstrip("/") + "/")}
    return sorted(found, key=lambda point: point.count("/"), reverse=True)


def unmount_under(path: Path) -> None:
    for dummy in range(5):
        points = mounts_under(path)
        if not points:
            return
        for point in points:
            if subprocess.run(["umount", point], stderr=subprocess.DEVNULL, check=False).returncode != 0:
                subprocess.run(["umount", "--lazy", point], stderr=subprocess.DEVNULL, check=False)
    if mounts_under(path):
        raise LabError(f"cannot unmount {', '.join(mounts_under(path))}; see `findmnt -R {path}`")


def remove_tree(path: Path) -> None:
    """rm -rf that first unmounts anything below path, so it never deletes through a mount."""
    if not path.exists() and not path.is_symlink():
        return
    unmount_under(path)
    run(["rm", "-rf", "--one-file-system", "--", str(path)])


def write_in_root(root: Path, relpath: str, content: str, mode: int = 0o644) -> None:
    """Write a file below a container root, refusing to follow symlinks out of it."""
    target = root / relpath.lstrip("/")
    current = root
    for part in Path(relpath.lstrip("/")).parts:
        current = current / part
        if current.is_symlink():
            raise LabError(f"{current} is a symlink; refusing to write through it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.lab-tmp")
    tmp.write_text(content)
    os.chmod(tmp, mode)
    os.replace(tmp, target)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another lab.py holding {path} ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def require_root() -> None:
    if os.geteuid() != 0:
        raise NotRootError("lab.py up/down must run as root (it mounts overlays and boots containers "
                           "with systemd-nspawn); try: sudo .venv/bin/python tests/lab/lab.py ...")


def ensure_tools(extra: dict[str, str] | None = None) -> None:
    tools = {**REQUIRED_TOOLS, **(extra or {})}
    missing = sorted({package for command, package in tools.items() if not shutil.which(command)})
    if not missing:
        return
    log(f"installing {' '.join(missing)} ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        log("apt-get install failed; running apt-get update and retrying")
        run(["apt-get", "update"], env=env)
        run(install, env=env)


# systemd in a container holds about 8 inotify instances, all counted against root here (the
# containers share this machine's user namespace); the kernel's default limit, 128, ends at about a
# dozen containers, all labs on the machine together, and systemd then dies at boot with "Failed to
# create control group inotify object: Too many open files".
INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_PER_HOST = 10
INOTIFY_FLOOR = 1024


def inotify_instances_in_use() -> int:
    count = 0
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            count += sum(1 for fd in fd_dir.iterdir() if os.readlink(fd) == "anon_inode:inotify")
    return count


def ensure_inotify_instances(hosts_to_boot: int) -> None:
    """Raise fs.inotify.max_user_instances if booting the hosts would exceed it."""
    if not hosts_to_boot or not INOTIFY_LIMIT.exists():
        return
    limit = int(INOTIFY_LIMIT.read_text())
    needed = inotify_instances_in_use() + hosts_to_boot * INOTIFY_PER_HOST
    if needed <= limit:
        return
    raised = max(INOTIFY_FLOOR, needed * 2)
    try:
        INOTIFY_LIMIT.write_text(f"{raised}\n")
    except OSError as error:
        raise LabError(f"{hosts_to_boot} more containers need about {needed} inotify instances, over the limit "
                       f"of {limit} ({error.strerror}); raise it: sysctl -w fs.inotify.max_user_instances={raised}"
                       ) from error
    log(f"raised fs.inotify.max_user_instances from {limit} to {raised}: {hosts_to_boot} containers to boot "
        f"need about {hosts_to_boot * INOTIFY_PER_HOST} more")


# --------------------------------------------------------------------------- image cache

def image_dir(suite: str) -> tuple[Path, dict[str, Any], dict[str, bytes]]:
    recipe, certificates = host_recipe(suite)
    return CACHE_DIR / f"{suite}-{recipe_hash(recipe)}", recipe, certificates


def image_is_complete(directory: Path) -> bool:
    return (directory / "recipe.json").is_file() and (directory / "rootfs" / "usr/lib/systemd/systemd").exists()


def ensure_image(suite: str) -> Path:
    directory, recipe, certificates = image_dir(suite)
    if image_is_complete(directory):
        return directory / "rootfs"
    with locked(CACHE_DIR / ".lock"):
        # Whoever holds the lock is the only builder, so any build dir left now is from a killed run.
        remove_cgroup(image_build_cgroup())
        for stale in CACHE_DIR.glob(".build-*"):
            log(f"removing interrupted image build {stale}")
            remove_tree(stale)
        if image_is_complete(directory):
            return directory / "rootfs"
        # Images appear by rename only when complete, so an incomplete one was damaged by hand.
        remove_tree(directory)
        build = CACHE_DIR / f".build-{directory.name}-{os.getpid()}"
        started = time.monotonic()
        log(f"building {suite} image {directory} (debootstrap, a minute or two) ...")
        try:
            build_image(build / "rootfs", recipe, certificates, build / "build.log")
            (build / "recipe.json").write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n")
            os.rename(build, directory)
        finally:
            remove_cgroup(image_build_cgroup())
            remove_tree(build)
        log(f"built {suite} image in {time.monotonic() - started:.0f}s")
    return directory / "rootfs"


def build_image(rootfs: Path, recipe: dict[str, Any], certificates: dict[str, bytes], log_path: Path) -> None:
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    suite = recipe["suite"]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
           "LC_ALL": "C.UTF-8", "HOME": "/root"}
    build_cgroup = image_build_cgroup()
    build_cgroup.mkdir(parents=True, exist_ok=True)
    procs = str(build_cgroup / "cgroup.procs")

    def contain_step() -> None:
        # A killed lab.py must not leave debootstrap writing into a dir the next run removes:
        # the direct child dies with us, and the next run kills whatever is left in the cgroup.
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        with open(procs, "w") as handle:
            handle.write("0")

    with open(log_path, "a") as build_log:
        def step(cmd: list[str]) -> None:
            build_log.write(f"\n$ {' '.join(cmd)}\n")
            build_log.flush()
            if subprocess.run(cmd, stdout=build_log, stderr=subprocess.STDOUT, env=env,
                              preexec_fn=contain_step, check=False).returncode != 0:
                raise LabError(f"image build step failed: {' '.join(cmd)}\n--- {log_path} (tail) ---\n"
                               f"{tail(log_path)}")

        def chroot(*cmd: str) -> None:
            step(["chroot", str(rootfs), *cmd])

        step(["debootstrap", "--variant=minbase", f"--include={','.join(recipe['packages'])}",
              "--components=main", suite, str(rootfs), recipe["mirror"]])
        write_in_root(rootfs, "/etc/apt/sources.list",
                      f"deb {recipe['mirror']} {suite} main\n"
                      f"deb {recipe['mirror']} {suite}-updates main\n"
                      f"deb {recipe['security_mirror']} {suite}-security main\n")
        write_in_root(rootfs, "/etc/apt/apt.conf.d/80wtstack-lab", 'Acquire::Retries "3";\n')
        for name, content in certificates.items():
            target = rootfs / "usr/local/share/ca-certificates" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        chroot("update-ca-certificates")
        write_in_root(rootfs, "/etc/pip.conf", recipe["pip_conf"])
        shutil.copyfile("/etc/resolv.conf", rootfs / "etc/resolv.conf")
        step(["mount", "-t", "proc", "proc", str(rootfs / "proc")])
        try:
            chroot("apt-get", "update")
            chroot("apt-get", "install", "-y", "--download-only", "--no-install-recommends", *recipe["prefetch"])
        finally:
            step(["umount", str(rootfs / "proc")])
        chroot("systemctl", "mask", *recipe["masked_units"])
        chroot("systemctl", "enable", "ssh.service")
        # The account users log in with on real hosts: unprivileged, root through sudo (Ansible's become).
        # Its authorized key is the lab's, written into each host's overlay.
        chroot("useradd", "--create-home", "--shell", "/bin/bash", "--uid", str(DEPLOY_UID), "--user-group",
               DEPLOY_USER)
        write_in_root(rootfs, f"/etc/sudoers.d/{DEPLOY_USER}", f"{DEPLOY_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440)
        # Per-host identity is written into each overlay; the image carries none.
        for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
            key.unlink()
        (rootfs / "etc/machine-id").write_text("")
        (rootfs / "etc/hostname").write_text("localhost\n")


# --------------------------------------------------------------------------- processes and cgroups

def cgroup2_root() -> Path:
    """Where cgroup2 is mounted: /sys/fs/cgroup (unified) or /sys/fs/cgroup/unified (hybrid)."""
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            before, dummy, after = line.partition(" - ")
            if after.split()[0] == "cgroup2":
                return Path(before.split()[4])
    raise LabError("no cgroup2 hierarchy is mounted; systemd in the containers needs one "
                   "(mount -t cgroup2 none /sys/fs/cgroup/unified)")


def lab_cgroup() -> Path:
    return cgroup2_root() / "wtstack-lab" / lab_id()


def image_build_cgroup() -> Path:
    return cgroup2_root() / "wtstack-lab" / "image-build"


def cgroup_pids(cgroup: Path) -> list[int]:
    pids: list[int] = []
    if cgroup.is_dir():
        for procs in cgroup.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids += [int(pid) for pid in procs.read_text().split()]
    return pids


def remove_cgroup(cgroup: Path) -> None:
    if not cgroup.is_dir():
        return
    deadline = time.monotonic() + 10
    while cgroup_pids(cgroup):
        if (cgroup / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (cgroup / "cgroup.kill").write_text("1")
        else:
            for pid in cgroup_pids(cgroup):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise LabError(f"processes {cgroup_pids(cgroup)} in {cgroup} do not die")
        time.sleep(0.2)
    for directory in sorted((path for path in cgroup.rglob("*") if path.is_dir()),
                            key=lambda path: len(path.parts), reverse=True) + [cgroup]:
        with contextlib.suppress(OSError):
            directory.rmdir()


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def nspawn_pid(name: str) -> int | None:
    """The recorded nspawn pid of a host, if that process is still this host's nspawn."""
    try:
        pid = int((HOSTS_DIR / name / "nspawn.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    wanted = {b"--machine=" + name.encode(), str(HOSTS_DIR / name / "merged").encode()}
    if not process_alive(pid) or not cmdline or not cmdline[0].endswith(b"systemd-nspawn") \
            or not wanted <= set(cmdline):
        return None
    return pid


def container_init_pid(nspawn: int) -> int | None:
    """Host pid of the container's PID 1 (a child of nspawn whose innermost pid is 1)."""
    try:
        children = Path(f"/proc/{nspawn}/task/{nspawn}/children").read_text().split()
    except OSError:
        return None
    for child in children:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("NSpid:") and line.split()[-1] == "1" and len(line.split()) > 2:
                    return int(child)
    return None


def in_container(nspawn: int, *cmd: str, timeout: float = 10) -> subprocess.CompletedProcess | None:
    init = container_init_pid(nspawn)
    if init is None:
        return None
    try:
        return subprocess.run(["nsenter", f"--target={init}", "--mount", "--uts", "--ipc", "--pid", "--", *cmd],
                              text=True, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None


def systemd_state(nspawn: int | None) -> str:
    if nspawn is None:
        return "down"
    result = in_container(nspawn, "systemctl", "is-system-running")
    if result is None:
        return "starting"
    return (result.stdout.strip() or "unknown").splitlines()[-1]


def failed_units(nspawn: int) -> list[str]:
    result = in_container(nspawn, "systemctl", "--failed", "--no-legend", "--plain")
    return [line.split()[0] for line in (result.stdout.splitlines() if result else []) if line.strip()]


def ssh_command(address: str, *remote: str) -> list[str]:
    return ["ssh", "-i", str(SSH_KEY), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
            *SSH_OPTIONS, f"root@{address}", *remote]


def ssh_ok(address: str) -> bool:
    try:
        return subprocess.run(ssh_command(address, "true"), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=15, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


# --------------------------------------------------------------------------- private lab network

def lab_id() -> str:
    """Names this checkout's lab apart from another checkout's on the same machine."""
    return hashlib.sha256(str(LAB_DIR).encode()).hexdigest()[:8]


def bridge_name() -> str:
    return f"wtlab-{lab_id()}"  # 14 characters: interface names have at most 15


def netns_name(host: str) -> str:
    return f"wtlab-{lab_id()}-{host}"


def veth_name(host: str) -> str:
    """The host's cable, seen from this machine: its end of the veth pair, on the bridge."""
    return "wl" + hashlib.sha256(f"{lab_id()}:{host}".encode()).hexdigest()[:10]


def mac_address(host: str) -> str:
    """The host's network card's own address: the same across reboots, as a real machine's is, so its
    peers' ARP caches stay right when it comes back (unicast VRRP adverts reach it at once)."""
    digest = hashlib.sha256(f"{lab_id()}:{host}:mac".encode()).digest()
    return ":".join(f"{byte:02x}" for byte in (0x02, *digest[:5]))  # locally administered, unicast


def nat_table() -> str:
    return f"wtlab_{lab_id()}"


NETNS_DIR = Path("/run/netns")
NETWORK_FILE = LAB_DIR / "network.json"  # what `up` changed on this machine, for `down` to undo
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["ip", *args], check=check, capture=True)


def link_exists(name: str, netns: str | None = None) -> bool:
    where = ["-n", netns] if netns else []
    return ip(*where, "link", "show", "dev", name, check=False).returncode == 0


def addresses_in(network: ipaddress.IPv4Network) -> dict[str, str]:
    """{interface: address} of this machine's own IPv4 addresses inside `network`."""
    found: dict[str, str] = {}
    for entry in json.loads(ip("-j", "-4", "addr", "show").stdout or "[]"):
        for info in entry.get("addr_info", []):
            if ipaddress.IPv4Address(info["local"]) in network:
                found[entry["ifname"]] = info["local"]
    return found


def nat_ruleset(network: ipaddress.IPv4Network, bridge: str) -> str:
    """Hosts on the lab network reach the package registries through this machine (masquerade),
    as loopback hosts do; nothing from outside is forwarded to them."""
    table = nat_table()
    return (f"table ip {table} {{}}\ndelete table ip {table}\n"
            f"table ip {table} {{\n"
            f"  chain postrouting {{\n"
            f"    type nat hook postrouting priority srcnat; policy accept;\n"
            f'    ip saddr {network} oifname != "{bridge}" masquerade\n'
            f"  }}\n"
            f"}}\n")


def ensure_network(fleet: Fleet) -> None:
    """The bridge (with this machine's address on it), forwarding and NAT to the registries; idempotent."""
    network, bridge = fleet.network, bridge_name()
    gateway = f"{fleet.gateway}/{network.prefixlen}"
    remove_stale_labs(network)
    taken = {name: address for name, address in addresses_in(network).items() if name != bridge}
    if taken:
        raise LabError(f"the fleet's network {network} is already in use on this machine "
                       f"({', '.join(f'{name} has {address}' for name, address in taken.items())}): another "
                       "lab's, perhaps; give this fleet another network, e.g. 198.18.1.0/24")
    if not link_exists(bridge):
        ip("link", "add", bridge, "type", "bridge")
    current = addresses_in(ipaddress.IPv4Network("0.0.0.0/0"))
    if current.get(bridge) != str(fleet.gateway):
        ip("addr", "flush", "dev", bridge)
        ip("addr", "add", gateway, "dev", bridge)
    ip("link", "set", bridge, "up")
    undo = load_network_file()
    if IP_FORWARD.read_text().strip() != "1":
        undo.setdefault("ip_forward", IP_FORWARD.read_text().strip())
        IP_FORWARD.write_text("1\n")
    undo["nat_table"] = nat_table()
    undo["bridge"] = bridge
    save_network_file(undo)
    run(["nft", "-f", "-"], input=nat_ruleset(network, bridge), capture=True)


def remove_stale_labs(network: ipaddress.IPv4Network) -> None:
    """Another checkout's lab network left behind by a run that was killed (its containers are gone, its
    bridge, namespaces and NAT table are not) gives way: nothing runs in it, and it holds our network."""
    for name in addresses_in(network):
        other = name.removeprefix("wtlab-")
        if name == bridge_name() or not name.startswith("wtlab-") or len(other) != 8:
            continue
        if cgroup_pids(cgroup2_root() / "wtstack-lab" / other):
            continue  # a lab that runs: ensure_network says whose network it is
        log(f"  removing a stopped lab's network left behind: bridge {name} and its namespaces")
        if NETNS_DIR.is_dir():
            for path in NETNS_DIR.iterdir():
                if path.name.startswith(f"{name}-"):
                    ip("netns", "delete", path.name, check=False)
        ip("link", "delete", name, check=False)
        if shutil.which("nft"):
            run(["nft", "delete", "table", "ip", f"wtlab_{other}"], check=False, capture=True)


def load_network_file() -> dict[str, Any]:
    try:
        return json.loads(NETWORK_FILE.read_text())
    except (OSError, ValueError):
        return {}


def save_network_file(data: dict[str, Any]) -> None:
    LAB_DIR.mkdir(parents=True, exist_ok=True)
    NETWORK_FILE.write_text(json.dumps(data, indent=2) + "\n")


def attach_host(host: Host, fleet: Fleet) -> None:
    """A fresh network namespace for a host about to boot: its own cable (a veth pair, eth0 inside,
    on the bridge outside), its address, and a default route through this machine."""
    netns, veth = netns_name(host.name), veth_name(host.name)
    detach_host(host.name)
    ip("netns", "add", netns)
    ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "address", mac_address(host.name), "netns", netns)
    ip("link", "set", veth, "master", bridge_name(), "up")
    ip("-n", netns, "addr", "add", f"{host.address}/{fleet.network.prefixlen}", "dev", "eth0")
    ip("-n", netns, "link", "set", "lo", "up")
    ip("-n", netns, "link", "set", "eth0", "up")
    ip("-n", netns, "route", "add", "default", "via", fleet.gateway)


def detach_host(name: str) -> None:
    """Remove a host's network namespace, and with it its cable and every address it held."""
    if (NETNS_DIR / netns_name(name)).exists():
        ip("netns", "delete", netns_name(name))
    if link_exists(veth_name(name)):
        ip("link", "delete", veth_name(name))


def remove_network() -> None:
    """Everything `up` made for private networks: namespaces, bridge, NAT, forwarding as it was."""
    prefix = f"wtlab-{lab_id()}-"
    if NETNS_DIR.is_dir():
        for path in NETNS_DIR.iterdir():
            if path.name.startswith(prefix):
                ip("netns", "delete", path.name, check=False)
    if shutil.which("ip") and link_exists(bridge_name()):
        ip("link", "delete", bridge_name())
    undo = load_network_file()
    if shutil.which("nft"):
        run(["nft", "delete", "table", "ip", nat_table()], check=False, capture=True)
    if "ip_forward" in undo and not other_lab_bridges():
        IP_FORWARD.write_text(undo["ip_forward"] + "\n")
    NETWORK_FILE.unlink(missing_ok=True)


def other_lab_bridges() -> list[str]:
    """Bridges of other checkouts' labs, which still need forwarding."""
    if not shutil.which("ip"):
        return []
    links = json.loads(ip("-j", "link", "show", "type", "bridge").stdout or "[]")
    return [link["ifname"] for link in links
            if link["ifname"].startswith("wtlab-") and link["ifname"] != bridge_name()]


def set_link(name: str, up: bool) -> None:
    if not link_exists(veth_name(name)):
        raise LabError(f"{name} has no cable on a lab network (is it running, on a fleet with `network:`?)")
    ip("link", "set", veth_name(name), "up" if up else "down")


# --------------------------------------------------------------------------- hosts

def host_dir(name: str) -> Path:
    return HOSTS_DIR / name


def host_spec(host: Host, image: Path) -> str:
    """What a host's disk was made from; a change means its upper layer is thrown away."""
    return hashlib.sha256(json.dumps([host.address, host.suite, str(image)]).encode()).hexdigest()[:12]


def ensure_ssh_key() -> None:
    if SSH_KEY.exists() and SSH_KEY.with_suffix(".pub").exists():
        return
    SSH_KEY.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in (SSH_KEY, SSH_KEY.with_suffix(".pub")):
        path.unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "wtstack-lab", "-f", str(SSH_KEY)])


def stop_host(name: str, cgroup: Path) -> None:
    """Power the container off (SIGTERM makes nspawn halt it), then make sure nothing of it is left."""
    pid = nspawn_pid(name)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while process_alive(pid) and time.monotonic() < deadline:
            reap(pid)
            time.sleep(0.1)
        if process_alive(pid):
            log(f"  {name}: did not power off within {STOP_TIMEOUT:.0f}s; killing nspawn {pid}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        reap(pid)
    remove_cgroup(cgroup / name)
    unmount_under(host_dir(name))
    (host_dir(name) / "nspawn.pid").unlink(missing_ok=True)
    if shutil.which("ip"):
        detach_host(name)


def kill_host(name: str, cgroup: Path) -> None:
    """Pull the plug: the host leaves the network (its cable, and every address it held, a VIP too)
    and every process of it dies at once, with no shutdown, as a powered-off machine would."""
    if shutil.which("ip"):
        detach_host(name)
    log(f"  {name:<10} plug pulled at {time.time():.3f}")
    remove_cgroup(cgroup / name)
    pid = nspawn_pid(name)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        reap(pid)
    stop_host(name, cgroup)


def prepare_host(host: Host, fleet: Fleet, image: Path) -> Path:
    """Mount the host's overlay and write its identity into it; safe to repeat."""
    directory = host_dir(host.name)
    upper, work, merged = directory / "upper", directory / "work", directory / "merged"
    for path in (upper, work, merged):
        path.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={image},upperdir={upper},workdir={work}"
    if any(char in str(path) for path in (image, directory) for char in ",:"):
        raise LabError(f"overlayfs cannot take paths containing ',' or ':' ({directory}, {image})")
    if str(merged) not in mount_points():
        run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)])
    write_in_root(merged, "/etc/hostname", host.name + "\n")
    write_in_root(merged, "/etc/hosts", etc_hosts(fleet))
    machine_id = merged / "etc/machine-id"
    if not machine_id.is_file() or not machine_id.read_text().strip():
        write_in_root(merged, "/etc/machine-id", secrets.token_hex(16) + "\n", 0o444)
    write_in_root(merged, "/etc/ssh/sshd_config.d/50-wtstack-lab.conf",
                  "# The containers share one network namespace: each sshd owns one address.\n"
                  f"ListenAddress {host.address}\nPermitRootLogin prohibit-password\nUseDNS no\n")
    write_in_root(merged, "/root/.ssh/authorized_keys", SSH_KEY.with_suffix(".pub").read_text(), 0o600)
    os.chmod(merged / "root/.ssh", 0o700)
    home = f"/home/{DEPLOY_USER}"
    write_in_root(merged, f"{home}/.ssh/authorized_keys", SSH_KEY.with_suffix(".pub").read_text(), 0o600)
    uid, gid = account_ids(merged, DEPLOY_USER)
    for path in (merged / home.lstrip("/") / ".ssh", merged / home.lstrip("/") / ".ssh/authorized_keys"):
        os.chown(path, uid, gid, follow_symlinks=False)
    os.chmod(merged / home.lstrip("/") / ".ssh", 0o700)
    run(["ssh-keygen", "-A", "-f", str(merged)], capture=True)
    return merged


def account_ids(root: Path, name: str) -> tuple[int, int]:
    """(uid, gid) of an account in a container root's /etc/passwd."""
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] == name:
            return int(fields[2]), int(fields[3])
    raise LabError(f"{root}: no account {name} in /etc/passwd (an image built before it existed?); run `up` again")


def address_in_use(address: str, port: int = 22) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((address, port)) == 0


def boot_host(host: Host, merged: Path, cgroup: Path, fleet: Fleet) -> int:
    directory = host_dir(host.name)
    if fleet.network is not None:
        attach_host(host, fleet)
    elif address_in_use(host.address):
        # Otherwise the readiness check would talk to whatever holds the port, not to this host.
        raise LabError(f"{host.name}: something already listens on {host.address}:22 "
                       f"(see `ss -ltnp 'src {host.address}'`); stop it or pick another address")
    host_cgroup = cgroup / host.name
    host_cgroup.mkdir(parents=True, exist_ok=True)
    procs = str(host_cgroup / "cgroup.procs")

    def enter_cgroup() -> None:
        # nspawn --keep-unit leaves the container in the caller's cgroup, so each host gets its own:
        # without systemd on the host that would otherwise be the cgroup2 root, shared by all.
        with open(procs, "w") as handle:
            handle.write("0")

    cmd = ["systemd-nspawn", "--register=no", "--keep-unit", "--boot", "-D", str(merged),
           f"--hostname={host.name}", f"--machine={host.name}", "--console=read-only",
           "--link-journal=no", "--resolv-conf=copy-host", "--timezone=copy"]
    if fleet.network is not None:
        # --private-network with a namespace of our own: nspawn then grants CAP_NET_ADMIN and a
        # writable /proc/sys/net, as on a real machine (keepalived adds and removes addresses).
        cmd += ["--private-network", f"--network-namespace-path={NETNS_DIR / netns_name(host.name)}"]
    # systemd >= 256 refuses cgroup v1; the host is hybrid, so hand the container the unified hierarchy.
    env = {**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}
    with open(directory / "console.log", "wb") as console:
        console.write(f"# {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(cmd)}\n".encode())
        console.flush()
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True, preexec_fn=enter_cgroup)
    (directory / "nspawn.pid").write_text(f"{process.pid}\n")
    return process.pid


def wait_ready(hosts: list[Host], timeout: float, started: float) -> dict[str, dict[str, Any]]:
    """Poll every host until systemd is up and sshd answers; fail with the console tail otherwise."""
    phase: dict[str, str] = {}
    ready: dict[str, dict[str, Any]] = {}
    while len(ready) < len(hosts):
        for host in hosts:
            if host.name in ready:
                continue
            pid = nspawn_pid(host.name)
            console = host_dir(host.name) / "console.log"
            if pid is None:
                raise LabError(f"{host.name}: the container exited while booting\n"
                               f"--- {console} (tail) ---\n{tail(console)}")
            state = systemd_state(pid)
            if state in ("maintenance", "stopping"):
                raise LabError(f"{host.name}: systemd is {state}; failed units: "
                               f"{', '.join(failed_units(pid)) or 'none'}\n--- {console} (tail) ---\n{tail(console)}")
            now = "systemd " + state
            if state in ("running", "degraded"):
                if ssh_ok(host.address):
                    failed = failed_units(pid) if state == "degraded" else []
                    ready[host.name] = {"pid": pid, "systemd": state, "failed_units": failed}
                    now = f"ready: systemd {state}, ssh ok"
                    if failed:
                        now += f" (failed units: {', '.join(failed)})"
                else:
                    now = f"systemd {state}, waiting for sshd on {host.address}:22"
            if phase.get(host.name) != now:
                phase[host.name] = now
                log(f"  {host.name:<10} {time.monotonic() - started:5.1f}s  {now}")
        if len(ready) == len(hosts):
            break
        if time.monotonic() - started > timeout:
            late = [host for host in hosts if host.name not in ready]
            report = "\n".join(f"--- {host.name}: {phase.get(host.name)}; {host_dir(host.name) / 'console.log'} "
                               f"(tail) ---\n{tail(host_dir(host.name) / 'console.log', 25)}" for host in late)
            raise LabError(f"timed out after {timeout:g}s waiting for {', '.join(host.name for host in late)} "
                           f"(they keep booting: run `up` again to wait more, or `down`)\n{report}")
        time.sleep(0.5)
    return ready


# --------------------------------------------------------------------------- state

def load_state() -> dict[str, Any]:
    try:
        return json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return {}


def save_state(state: dict[str, Any]) -> None:
    LAB_DIR.mkdir(parents=True, exist_ok=True)
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, STATE_FILE)


def known_host_names(state: dict[str, Any]) -> list[str]:
    names = list(state.get("hosts", {}))
    if HOSTS_DIR.is_dir():
        names += sorted(path.name for path in HOSTS_DIR.iterdir() if path.is_dir() and path.name not in names)
    return names


# --------------------------------------------------------------------------- commands

def command_up(fleet_path: Path, timeout: float) -> None:
    require_root()
    fleet = load_fleet(fleet_path)
    started = time.monotonic()
    with locked(LAB_DIR / "lock"):
        ensure_tools(NETWORK_TOOLS if fleet.network is not None else {})
        ensure_ssh_key()
        cgroup = lab_cgroup()
        state = load_state()
        previous = state.get("hosts", {})
        if state.get("network") != (str(fleet.network) if fleet.network else None):
            # Hosts cannot change networks in place: the old fleet's hosts go first, then its network.
            for name in known_host_names(state):
                log(f"  {name:<10} on another network than {fleet_path.name}'s: removing")
                stop_host(name, cgroup)
                remove_tree(host_dir(name))
                previous.pop(name, None)
            remove_network()
        if fleet.network is not None:
            ensure_network(fleet)

        for name in known_host_names(state):
            if name not in {host.name for host in fleet.hosts}:
                log(f"  {name:<10} not in {fleet_path.name}: removing")
                stop_host(name, cgroup)
                remove_tree(host_dir(name))
                previous.pop(name, None)

        images = {suite: ensure_image(suite) for suite in sorted({host.suite for host in fleet.hosts})}
        # Hosts not reached yet keep their old record, so a run killed halfway loses nothing.
        state = {"fleet": str(fleet_path.resolve()), "ssh_key": str(SSH_KEY), "cgroup": str(cgroup),
                 "network": str(fleet.network) if fleet.network else None,
                 "hosts": {host.name: previous[host.name] for host in fleet.hosts if host.name in previous}}
        booted: list[Host] = []
        boot_started = None
        ensure_inotify_instances(sum(1 for host in fleet.hosts if not nspawn_pid(host.name)))
        for host in fleet.hosts:
            image = images[host.suite]
            spec = host_spec(host, image)
            record = {"address": host.address, "suite": host.suite, "image": str(image), "spec": spec,
                      "groups": list(host.groups)}
            running = nspawn_pid(host.name)
            same_disk = previous.get(host.name, {}).get("spec") == spec and previous[host.name].get("prepared")
            if running and same_disk:
                state["hosts"][host.name] = {**previous[host.name], **record}
                write_in_root(host_dir(host.name) / "merged", "/etc/hosts", etc_hosts(fleet))
                log(f"  {host.name:<10} running (nspawn pid {running})")
            else:
                # Stops a container whose disk no longer fits the fleet, or cleans up after a dead one
                # (stale cgroup, overlay mount, pid file); a dead host with a fitting disk keeps it.
                stop_host(host.name, cgroup)
                if not same_disk and host_dir(host.name).exists():
                    log(f"  {host.name:<10} recreating: its disk was not made for this address, suite and image")
                    remove_tree(host_dir(host.name))
                state["hosts"][host.name] = {**record, "prepared": False}
                save_state(state)
                merged = prepare_host(host, fleet, image)
                state["hosts"][host.name]["prepared"] = True
                boot_started = boot_started or time.monotonic()
                pid = boot_host(host, merged, cgroup, fleet)
                state["hosts"][host.name]["pid"] = pid
                save_state(state)
                booted.append(host)
                log(f"  {host.name:<10} booting {host.suite} at {host.address} (nspawn pid {pid})")
        state["hosts"] = {host.name: state["hosts"][host.name] for host in fleet.hosts}
        save_state(state)

        log("waiting for systemd and sshd (seconds since the first boot):")
        ready = wait_ready(list(fleet.hosts), timeout, boot_started or time.monotonic())
        for name, info in ready.items():
            state["hosts"][name].update(info)
        save_state(state)
        INVENTORY_FILE.write_text(render_inventory(fleet, SSH_KEY))
        DEPLOY_INVENTORY_FILE.write_text(render_inventory(fleet, SSH_KEY, DEPLOY_USER))
    log(f"lab up in {time.monotonic() - started:.1f}s ({len(booted)} booted); inventory: {INVENTORY_FILE} "
        f"(as {DEPLOY_USER} with sudo: {DEPLOY_INVENTORY_FILE.name})")
    print_status(state)


def command_down() -> None:
    require_root()
    started = time.monotonic()
    with locked(LAB_DIR / "lock"):
        state = load_state()
        cgroup = lab_cgroup()
        names = known_host_names(state)
        if cgroup.is_dir():
            names += [path.name for path in cgroup.iterdir() if path.is_dir() and path.name not in names]
        for name in names:
            log(f"  {name:<10} stopping")
            stop_host(name, cgroup)
        remove_cgroup(cgroup)
        remove_network()
        for empty in (image_build_cgroup(), cgroup.parent):  # rmdir fails while a build is running
            with contextlib.suppress(OSError):
                empty.rmdir()
        remove_tree(HOSTS_DIR)
        for path in (STATE_FILE, INVENTORY_FILE, DEPLOY_INVENTORY_FILE):
            path.unlink(missing_ok=True)
    log(f"lab down in {time.monotonic() - started:.1f}s" if names else "no lab running")


def command_stop(names: list[str], kill: bool) -> None:
    require_root()
    with locked(LAB_DIR / "lock"):
        state = load_state()
        unknown = [name for name in names if name not in state.get("hosts", {})]
        if unknown:
            raise LabError(f"no such host in the running lab: {', '.join(unknown)}")
        for name in names:
            log(f"  {name:<10} {'pulling the plug' if kill else 'powering off'}")
            (kill_host if kill else stop_host)(name, lab_cgroup())
    log("boot them again with: lab.py up --fleet <the same fleet file>")


def command_link(name: str, up: bool) -> None:
    require_root()
    state = load_state()
    if name not in state.get("hosts", {}):
        raise LabError(f"no such host in the running lab: {name}")
    set_link(name, up)
    log(f"  {name:<10} cable {'plugged in' if up else 'pulled out'} ({veth_name(name)} {'up' if up else 'down'})")


def print_status(state: dict[str, Any]) -> None:
    rows = [("HOST", "ADDRESS", "SUITE", "PID", "SYSTEMD", "SSH")]
    for name, info in state.get("hosts", {}).items():
        pid = nspawn_pid(name)
        rows.append((name, info.get("address", "?"), info.get("suite", "?"), str(pid or "-"), systemd_state(pid),
                     ("ok" if ssh_ok(info["address"]) else "no") if pid else "-"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        log("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def command_status() -> int:
    state = load_state()
    if not state.get("hosts"):
        log("no lab (run: tests/lab/lab.py up)")
        return 0
    print_status(state)
    return 0 if all(nspawn_pid(name) for name in state["hosts"]) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lab.py", description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build images if needed, boot the fleet, write .lab/inventory.yml")
    up.add_argument("--fleet", type=Path, default=DEFAULT_FLEET, help="fleet file (default: %(default)s)")
    up.add_argument("--timeout", type=float, default=BOOT_TIMEOUT, help="seconds to wait for the hosts to boot")
    for name, text in (("down", "stop every container and remove .lab/hosts"),
                       ("status", "show each host's pid, systemd state and ssh reachability")):
        command = sub.add_parser(name, help=text)
        command.add_argument("--fleet", type=Path, help="ignored: down and status act on the running lab")
    stop = sub.add_parser("stop", help="power hosts off (`up` boots them again on their own disks)")
    stop.add_argument("hosts", nargs="+")
    stop.add_argument("--kill", action="store_true",
                      help="pull the plug: no shutdown, every process killed at once, the network gone")
    link = sub.add_parser("link", help="plug a host's network cable in or out (fleets with `network:`)")
    link.add_argument("host")
    link.add_argument("state", choices=("up", "down"))
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            command_up(args.fleet, args.timeout)
        elif args.command == "down":
            command_down()
        elif args.command == "stop":
            command_stop(args.hosts, args.kill)
        elif args.command == "link":
            command_link(args.host, args.state == "up")
        else:
            return command_status()
    except LabError as error:
        print(f"lab.py {args.command}: {error}", file=sys.stderr, flush=True)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"lab.py {args.command}: interrupted; run it again (or `lab.py down`) to clean up", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
