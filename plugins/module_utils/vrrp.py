# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The load balancers' side of the floating VIPs (keepalived, VRRP), as plain Python.

- which interface carries a balancer's VRRP address, from Ansible's gathered facts;
- what keepalived reports (the state files its notify script writes) and which VIPs a balancer holds;
- a graceful handover: new connections to a VIP are held back (their SYNs dropped, so clients send
  them again a second later, to the VIP's next holder) while the ones in flight finish, then the
  balancer releases the VIP to keepalived's election.

No Ansible import: the filter, the modules and the unit tests all use it as is.
"""

from __future__ import annotations

import ipaddress
import socket

# /proc/net/tcp states (include/net/tcp_states.h) of a connection that can still carry a request.
_LIVE_TCP_STATES = {"01": "ESTABLISHED", "03": "SYN_RECV"}
HANDOVER_TABLE = "wtstack_vip_handover"
# Where the haproxy role's keepalived notify script records each VIP's VRRP state, and where a VIP is
# released (the role's haproxy_vrrp_state_dir and haproxy_vrrp_release_dir).
VRRP_STATE_DIR = "/run/wtstack/vrrp"
VRRP_RELEASE_DIR = "/var/lib/wtstack/vrrp"


class VrrpError(ValueError):
    """A problem an operator can act on; the message says which and what to do."""


def interface_holding(facts, address, host="this host"):
    """The name of the interface that has `address`, from Ansible's facts (gather_facts).

    Raises VrrpError naming the host's interfaces and their addresses when none has it.
    """
    wanted = ipaddress.ip_address(str(address))
    seen = []
    for name in facts.get("interfaces", []) or []:
        interface = facts.get(name.replace("-", "_").replace(".", "_").replace(":", "_")) or facts.get(name) or {}
        addresses = _interface_addresses(interface)
        if wanted in addresses:
            return interface.get("device", name)
        if addresses:
            seen.append(f"{interface.get('device', name)}: {', '.join(map(str, addresses))}")
    raise VrrpError(f"{host}: haproxy_vrrp_interface: no interface of this host has its VRRP address {wanted} "
                    f"({'; '.join(seen) or 'no addresses in the facts'}); set haproxy_vrrp_address to one of "
                    "its addresses, or haproxy_vrrp_interface to the interface the VIPs go on.")


def _interface_addresses(interface):
    found = []
    ipv4 = interface.get("ipv4")
    for entry in ([ipv4] if isinstance(ipv4, dict) else ipv4 or []) + list(interface.get("ipv4_secondaries") or []):
        if entry.get("address"):
            found.append(ipaddress.ip_address(entry["address"]))
    for entry in interface.get("ipv6") or []:
        if entry.get("address"):
            found.append(ipaddress.ip_address(entry["address"].split("%")[0]))
    return found


def parse_state_file(text):
    """(state, priority, since) from a line the notify script wrote: "MASTER 250 1733600000.123"."""
    parts = text.split()
    if len(parts) < 3:
        raise VrrpError(f"unexpected VRRP state record {text!r}")
    return parts[0], int(parts[1]), float(parts[2])


def connections_to(proc_net_tcp, addresses):
    """How many TCP connections that can still carry a request (established, or being accepted) have
    one of `addresses` as their local address, from the text of /proc/net/tcp or /proc/net/tcp6."""
    wanted = {_proc_address(ipaddress.ip_address(address)) for address in addresses}
    count = 0
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        local_address = fields[1].rsplit(":", 1)[0]
        if local_address in wanted and fields[3] in _LIVE_TCP_STATES:
            count += 1
    return count


def _proc_address(address):
    """An address as /proc/net/tcp writes it: the packed bytes as host-order 32-bit words, in hex."""
    packed = address.packed
    words = [packed[index:index + 4] for index in range(0, len(packed), 4)]
    return "".join(int.from_bytes(word, "little" if socket.htonl(1) != 1 else "big").to_bytes(4, "big").hex()
                   for word in words).upper()


def handover_ruleset(addresses):
    """nftables commands that drop new TCP connections (SYN without ACK) to `addresses` on this host,
    replacing any earlier set; with no addresses, they remove the table. A client whose SYN is dropped
    sends it again after a second (TCP's initial retransmission timeout), by then to the next holder;
    nothing already established is touched, so requests in flight finish here."""
    ipv4 = sorted(str(address) for address in map(ipaddress.ip_address, addresses) if address.version == 4)
    ipv6 = sorted(str(address) for address in map(ipaddress.ip_address, addresses) if address.version == 6)
    lines = [f"table inet {HANDOVER_TABLE} {{}}", f"delete table inet {HANDOVER_TABLE}"]
    if ipv4 or ipv6:
        rules = []
        if ipv4:
            rules.append(f"    ip daddr {{ {', '.join(ipv4)} }} tcp flags & (syn | ack) == syn drop")
        if ipv6:
            rules.append(f"    ip6 daddr {{ {', '.join(ipv6)} }} tcp flags & (syn | ack) == syn drop")
        lines += [f"table inet {HANDOVER_TABLE} {{",
                  "  chain input {",
                  "    type filter hook input priority filter - 10; policy accept;",
                  *rules,
                  "  }",
                  "}"]
    return "\n".join(lines) + "\n"


def handover_ruleset_with_timeout(addresses, seconds):
    """`handover_ruleset`, but each address is held back for `seconds` at most: nftables drops the set's
    elements by itself then, so a handover cut short (a killed run) never leaves a VIP unreachable."""
    ipv4 = sorted(str(address) for address in map(ipaddress.ip_address, addresses) if address.version == 4)
    ipv6 = sorted(str(address) for address in map(ipaddress.ip_address, addresses) if address.version == 6)
    timeout = f"{max(1, int(seconds + 0.999))}s"

    def elements(found):
        return f" elements = {{ {', '.join(f'{address} timeout {timeout}' for address in found)} }};" if found else ""

    return (f"table inet {HANDOVER_TABLE} {{}}\n"
            f"delete table inet {HANDOVER_TABLE}\n"
            f"table inet {HANDOVER_TABLE} {{\n"
            f"  set held_back_ipv4 {{ type ipv4_addr; flags timeout;{elements(ipv4)} }}\n"
            f"  set held_back_ipv6 {{ type ipv6_addr; flags timeout;{elements(ipv6)} }}\n"
            "  chain input {\n"
            "    type filter hook input priority filter - 10; policy accept;\n"
            "    ip daddr @held_back_ipv4 tcp flags & (syn | ack) == syn drop\n"
            "    ip6 daddr @held_back_ipv6 tcp flags & (syn | ack) == syn drop\n"
            "  }\n"
            "}\n")


def remove_handover_ruleset():
    return f"table inet {HANDOVER_TABLE} {{}}\ndelete table inet {HANDOVER_TABLE}\n"


def is_local(address):
    """Whether this host has `address` on one of its interfaces (binding to it works only then)."""
    parsed = ipaddress.ip_address(address)
    family = socket.AF_INET if parsed.version == 4 else socket.AF_INET6
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(parsed), 0))
        except OSError:
            return False
    return True


def release_file(release_dir, name):
    return f"{release_dir.rstrip('/')}/{name}.released"


class Host:
    """What a handover touches on the balancer, one method each, so that the logic can be tested
    with a fake and the module uses the real thing."""

    def __init__(self, run_nft, clock, sleep):
        self.run_nft = run_nft
        self.clock = clock
        self.sleep = sleep

    def holds(self, address):
        return is_local(address)

    def connections_to(self, addresses):
        count = 0
        for path in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(path) as table:
                    count += connections_to(table.read(), addresses)
            except OSError:
                continue
        return count

    def released(self, path):
        try:
            with open(path) as handle:
                return handle.read().strip() not in ("", "0")
        except OSError:
            return False

    def set_released(self, path, released):
        directory = path.rsplit("/", 1)[0]
        import os
        os.makedirs(directory, mode=0o755, exist_ok=True)
        temporary = f"{path}.tmp"
        with open(temporary, "w") as handle:
            handle.write("1\n" if released else "0\n")
        os.replace(temporary, path)


def release(host, vips, release_dir, drain_timeout, move_timeout, interval=0.05, check_mode=False):
    """Release `vips` ([{name, address}]) on this balancer, gracefully.

    The VIPs it holds first stop taking new connections (their SYNs are dropped, so clients send them
    again a second later, by then to the next holder); once no connection to them is left, or after
    `drain_timeout` seconds, the release files tell keepalived to leave their elections, and this waits
    until keepalived has taken them off this host (at most `move_timeout` seconds). VIPs it does not
    hold are released at once (it stops being a candidate for them).
    Returns a dict for the module's result; raises VrrpError when keepalived keeps a VIP.
    """
    to_release = [vip for vip in vips if not host.released(release_file(release_dir, vip["name"]))]
    held = [vip["address"] for vip in vips if host.holds(vip["address"])]
    result = {"changed": bool(to_release), "released": [vip["name"] for vip in to_release], "held": held,
              "connections_left": 0, "drain_seconds": 0.0, "move_seconds": 0.0}
    if check_mode or not to_release:
        return result
    held_to_move = [vip["address"] for vip in to_release if vip["address"] in held]
    try:
        if held_to_move:
            host.run_nft(handover_ruleset_with_timeout(held_to_move, drain_timeout + move_timeout + 5))
            started = host.clock()
            while host.connections_to(held_to_move) and host.clock() - started < drain_timeout:
                host.sleep(interval)
            result["connections_left"] = host.connections_to(held_to_move)
            result["drain_seconds"] = round(host.clock() - started, 3)
        for vip in to_release:
            host.set_released(release_file(release_dir, vip["name"]), True)
        started = host.clock()
        while any(host.holds(address) for address in held_to_move):
            if host.clock() - started > move_timeout:
                still = [address for address in held_to_move if host.holds(address)]
                raise VrrpError(f"keepalived still holds {', '.join(still)} here {move_timeout:g} s after the "
                                "release; see `journalctl -u keepalived` on this balancer")
            host.sleep(interval)
        result["move_seconds"] = round(host.clock() - started, 3)
    finally:
        if held_to_move:
            host.run_nft(remove_handover_ruleset())
    return result


def make_candidate(host, vips, release_dir, check_mode=False):
    """Let this balancer take part in the elections of `vips` again (undo `release`)."""
    changed = [vip["name"] for vip in vips if host.released(release_file(release_dir, vip["name"]))]
    if not check_mode:
        for vip in vips:
            if vip["name"] in changed:
                host.set_released(release_file(release_dir, vip["name"]), False)
    return {"changed": bool(changed), "candidate_again": changed,
            "held": [vip["address"] for vip in vips if host.holds(vip["address"])]}


def wait_held(host, vips, timeout, interval=0.05):
    """Wait until this balancer holds every VIP of `vips`; returns the seconds it took."""
    started = host.clock()
    while True:
        missing = [vip["address"] for vip in vips if not host.holds(vip["address"])]
        if not missing:
            return round(host.clock() - started, 3)
        if host.clock() - started > timeout:
            raise VrrpError(f"this balancer did not take {', '.join(missing)} within {timeout:g} s; see "
                            "`journalctl -u keepalived` here and on the balancer that holds it")
        host.sleep(interval)


def successors(vips, leaving):
    """{balancer: [VIPs]}: who takes each VIP when `leaving` gives it up, by the VIP's priority order
    (the topology's `priorities`: preferred holder first), assuming every other balancer serves."""
    taking = {}
    for vip in vips:
        order = [entry["host"] for entry in vip["priorities"] if entry["host"] != leaving]
        if not order:
            raise VrrpError(f"{leaving}: haproxy_vips: {vip['address']} has no other balancer to move to; "
                            "add a second balancer to the balancer group")
        taking.setdefault(order[0], []).append(vip)
    return taking


def vip_status(vips, state_dir, release_dir, holds=is_local, read=None):
    """This balancer's view of each VIP: whether it holds it, keepalived's last reported VRRP state for
    it (MASTER, BACKUP, FAULT, STOP; None before keepalived reported one) and since when, and whether it
    is released here. `vips`: [{name, address}]."""
    read = read or _read_text
    rows = []
    for vip in vips:
        state = priority = since = None
        text = read(f"{state_dir.rstrip('/')}/{vip['name']}")
        if text:
            try:
                state, priority, since = parse_state_file(text)
            except (VrrpError, ValueError):
                state = None
        released = (read(release_file(release_dir, vip["name"])) or "0").strip() not in ("", "0")
        rows.append({"name": vip["name"], "address": vip["address"], "held": holds(vip["address"]),
                     "state": state, "priority": priority, "since": since, "released": released})
    return rows


def _read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None
