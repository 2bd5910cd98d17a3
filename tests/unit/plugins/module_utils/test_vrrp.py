"""The load balancers' side of the floating VIPs: interfaces from facts, /proc/net/tcp, handovers."""

import pytest
from ansible_collections.wtstack.fleet.plugins.module_utils import vrrp

FACTS = {
    "interfaces": ["lo", "eth0", "eth1"],
    "lo": {"device": "lo", "ipv4": {"address": "127.0.0.1"}, "ipv6": [{"address": "::1"}]},
    "eth0": {"device": "eth0", "ipv4": {"address": "198.18.0.11"},
             "ipv4_secondaries": [{"address": "198.18.0.100"}],
             "ipv6": [{"address": "fe80::1%eth0"}]},
    "eth1": {"device": "eth1", "ipv4": {"address": "10.0.0.5"}, "ipv6": [{"address": "2001:db8::5"}]},
}


@pytest.mark.parametrize(("address", "interface"), [
    ("198.18.0.11", "eth0"), ("10.0.0.5", "eth1"), ("2001:db8::5", "eth1"), ("198.18.0.100", "eth0")])
def test_the_interface_holding_an_address_is_found_in_the_facts(address, interface):
    assert vrrp.interface_holding(FACTS, address) == interface


def test_interface_names_with_dashes_are_found_under_their_fact_names():
    facts = {"interfaces": ["br-lan"], "br_lan": {"device": "br-lan", "ipv4": {"address": "10.1.0.1"}}}
    assert vrrp.interface_holding(facts, "10.1.0.1") == "br-lan"


def test_an_address_on_no_interface_is_refused_naming_what_the_host_has():
    with pytest.raises(vrrp.VrrpError) as caught:
        vrrp.interface_holding(FACTS, "198.18.0.12", "lb1")
    message = str(caught.value)
    assert message.startswith("lb1: haproxy_vrrp_interface: ")
    assert "198.18.0.12" in message and "eth0: 198.18.0.11" in message and "eth1: 10.0.0.5" in message
    assert "set haproxy_vrrp_address" in message


# A real /proc/net/tcp of a balancer: HAProxy listening on *:80, one connection from 198.18.0.1 to the
# VIP 198.18.0.100:80 established, one to the VIP in TIME_WAIT, one to the balancer's own address.
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 640012C6:0050 010012C6:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 640012C6:0050 010012C6:D2F2 06 00000000:00000000 03:00000ABC 00000000     0        0 0 3 0
   3: 0B0012C6:0050 010012C6:D2F4 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   4: 640012C6:01BB 010012C6:D2F6 03 00000000:00000000 00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1
"""


def test_connections_to_a_vip_count_established_and_accepting_ones_only():
    assert vrrp.connections_to(PROC_NET_TCP, ["198.18.0.100"]) == 2
    assert vrrp.connections_to(PROC_NET_TCP, ["198.18.0.11"]) == 1
    assert vrrp.connections_to(PROC_NET_TCP, ["198.18.0.101"]) == 0


def test_ipv6_addresses_are_matched_as_proc_net_tcp6_writes_them():
    # 2001:db8::5 as /proc/net/tcp6 shows it on a little-endian host.
    line = ("  sl  local_address                         remote_address                        st\n"
            "   0: B80D0120000000000000000005000000:0050 B80D0120000000000000000001000000:D2F0 01 0\n")
    assert vrrp.connections_to(line, ["2001:db8::5"]) == 1


def test_the_handover_ruleset_drops_only_new_connections_and_expires_by_itself():
    rules = vrrp.handover_ruleset_with_timeout(["198.18.0.100", "2001:db8::10"], 12.2)
    assert "delete table inet wtstack_vip_handover" in rules
    assert "198.18.0.100 timeout 13s" in rules and "2001:db8::10 timeout 13s" in rules
    assert "tcp flags & (syn | ack) == syn drop" in rules
    assert vrrp.remove_handover_ruleset().endswith("delete table inet wtstack_vip_handover\n")


def test_state_records_of_the_notify_script_are_parsed():
    assert vrrp.parse_state_file("MASTER 250 1733600000.25\n") == ("MASTER", 250, 1733600000.25)
    with pytest.raises(vrrp.VrrpError):
        vrrp.parse_state_file("MASTER\n")


class FakeBalancer:
    """A balancer whose keepalived takes a released VIP off after `move_after` seconds, and whose
    connections to it end after `connections_for` seconds."""

    def __init__(self, held, connections_for=0.3, move_after=0.2, released=()):
        self.now = 0.0
        self.held = set(held)
        self.files = {path: True for path in released}
        self.connections_for = connections_for
        self.move_after = move_after
        self.rulesets = []
        self.released_at = None

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        if self.released_at is not None and self.now - self.released_at >= self.move_after:
            self.held -= self.moving

    def run_nft(self, ruleset):
        self.rulesets.append((self.now, ruleset))

    def holds(self, address):
        return address in self.held

    def connections_to(self, addresses):
        return 3 if self.now < self.connections_for and set(addresses) & self.held else 0

    def released(self, path):
        return self.files.get(path, False)

    def set_released(self, path, released):
        self.files[path] = released
        if released and self.released_at is None:
            self.released_at = self.now
            self.moving = set(self.held)


VIPS = [{"name": "wtstack_vip_51", "address": "198.18.0.100"}, {"name": "wtstack_vip_52", "address": "198.18.0.101"}]


def test_a_release_holds_new_connections_back_until_the_open_ones_end_then_lets_keepalived_move_the_vip():
    balancer = FakeBalancer(held={"198.18.0.100"})
    result = vrrp.release(balancer, VIPS, "/var/lib/wtstack/vrrp", drain_timeout=2, move_timeout=5)
    assert result["changed"] and result["released"] == ["wtstack_vip_51", "wtstack_vip_52"]
    assert result["held"] == ["198.18.0.100"] and result["connections_left"] == 0
    assert 0.3 <= result["drain_seconds"] < 0.4 and 0.2 <= result["move_seconds"] < 0.3
    (added_at, added), (removed_at, removed) = balancer.rulesets
    assert added_at == 0.0 and "198.18.0.100 timeout" in added and "198.18.0.101" not in added
    assert "delete table" in removed and removed_at >= 0.5
    assert balancer.files == {"/var/lib/wtstack/vrrp/wtstack_vip_51.released": True,
                              "/var/lib/wtstack/vrrp/wtstack_vip_52.released": True}


def test_a_drain_that_does_not_end_is_cut_at_its_timeout_and_counted():
    balancer = FakeBalancer(held={"198.18.0.100"}, connections_for=99, move_after=0.1)
    result = vrrp.release(balancer, VIPS[:1], "/d", drain_timeout=1, move_timeout=5)
    assert result["connections_left"] == 3 and 1.0 <= result["drain_seconds"] < 1.1


def test_keepalived_that_keeps_a_vip_fails_the_release_and_the_held_back_connections_are_let_in_again():
    balancer = FakeBalancer(held={"198.18.0.100"}, move_after=99)
    with pytest.raises(vrrp.VrrpError, match="keepalived still holds 198.18.0.100"):
        vrrp.release(balancer, VIPS[:1], "/d", drain_timeout=1, move_timeout=2)
    assert "delete table" in balancer.rulesets[-1][1]


def test_released_vips_stay_released_and_check_mode_changes_nothing():
    done = FakeBalancer(held=set(), released={"/d/wtstack_vip_51.released", "/d/wtstack_vip_52.released"})
    assert vrrp.release(done, VIPS, "/d", 2, 5)["changed"] is False and done.rulesets == []
    dry = FakeBalancer(held={"198.18.0.100"})
    result = vrrp.release(dry, VIPS, "/d", 2, 5, check_mode=True)
    assert result["changed"] and dry.rulesets == [] and dry.files == {}


def test_a_candidate_again_clears_only_what_was_released():
    balancer = FakeBalancer(held=set(), released={"/d/wtstack_vip_52.released"})
    result = vrrp.make_candidate(balancer, VIPS, "/d")
    assert result == {"changed": True, "candidate_again": ["wtstack_vip_52"], "held": []}
    assert balancer.files == {"/d/wtstack_vip_52.released": False}
    assert vrrp.make_candidate(balancer, VIPS, "/d")["changed"] is False


def test_waiting_to_hold_vips_times_out_naming_the_missing_one():
    balancer = FakeBalancer(held={"198.18.0.100"})
    assert vrrp.wait_held(balancer, VIPS[:1], timeout=1) == 0
    with pytest.raises(vrrp.VrrpError, match="did not take 198.18.0.101 within 1 s"):
        vrrp.wait_held(balancer, VIPS, timeout=1)


def test_is_local_knows_this_machines_loopback():
    assert vrrp.is_local("127.0.0.1")
    assert not vrrp.is_local("198.51.100.77")


def test_each_vip_goes_to_the_next_balancer_of_its_priority_order():
    def vip(address, *order):
        return {"address": address, "priorities": [{"host": host, "priority": 250 - 10 * index}
                                                   for index, host in enumerate(order)]}

    vips = [vip("198.18.0.100", "lb1", "lb2", "lb3"), vip("198.18.0.101", "lb2", "lb3", "lb1"),
            vip("198.18.0.102", "lb3", "lb1", "lb2")]
    taking = vrrp.successors(vips, "lb1")
    assert {host: [vip["address"] for vip in taken] for host, taken in taking.items()} == {
        "lb2": ["198.18.0.100", "198.18.0.101"], "lb3": ["198.18.0.102"]}
    with pytest.raises(vrrp.VrrpError, match="no other balancer"):
        vrrp.successors([{"address": "198.18.0.100", "priorities": [{"host": "lb1", "priority": 250}]}], "lb1")


def test_a_balancers_view_of_each_vip_comes_from_the_notify_records_its_release_files_and_its_addresses():
    files = {"/run/wtstack/vrrp/wtstack_vip_51": "MASTER 250 1733600000.5\n",
             "/run/wtstack/vrrp/wtstack_vip_52": "garbage",
             "/var/lib/wtstack/vrrp/wtstack_vip_52.released": "1\n"}
    rows = vrrp.vip_status(VIPS, "/run/wtstack/vrrp", "/var/lib/wtstack/vrrp",
                           holds=lambda address: address == "198.18.0.100", read=files.get)
    assert rows == [
        {"name": "wtstack_vip_51", "address": "198.18.0.100", "held": True, "state": "MASTER", "priority": 250,
         "since": 1733600000.5, "released": False},
        {"name": "wtstack_vip_52", "address": "198.18.0.101", "held": False, "state": None, "priority": None,
         "since": None, "released": True}]
