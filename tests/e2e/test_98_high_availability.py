"""High availability of the load balancers: floating VIPs held by keepalived, sessions kept across a failover.

The lab switches to tests/e2e/fleet-ha.yml (WTSTACK_E2E_HA_FLEET) for this module: a private lab network
(each host in its own network namespace), two balancers (Debian 13 with keepalived 2.3, Debian 12 with
keepalived 2.2) holding two VIPs (each preferred by one), two app hosts. Under a load of sessions through
both VIPs, every request clicking the demo's server-side counter and checking it went up by exactly one,
with every VIP's holders sampled every 100 ms on both balancers and each VIP probed every 50 ms:

- failover for each fault (HAProxy killed and kept down, keepalived stopped, the holder's cable pulled, the
  holder powered off), repeated, at the default 1 s advertisement interval and at 0.2 s: the time from the
  fault to the VIP answering again, median and worst; the VIP back on its preferred holder afterwards;
- nothing lost: no session moves to another instance and no counter resets across every failover; failed
  requests are only those in flight on the dead balancer, and none fails after one client retry;
- exactly one holder: never two holders of a VIP in a sample, never none for longer than the failover bound;
- a change of keepalived's configuration (the advertisement interval) moves no VIP;
- the balancers rolled one by one (playbooks/rolling_balancers.yml) with no failed request at all;
- a browser whose WebSocket ran through the dead balancer goes on, through the new holder, with its state.
"""

import contextlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from conftest import INVENTORY, REPO, Lab, lab_command, network_events
from ha import VipProber, VipSampler, describe, lab_py
from load import SessionLoad

HA_FLEET = Path(os.environ.get("WTSTACK_E2E_HA_FLEET", REPO / "tests/e2e/fleet-ha.yml"))
SESSIONS = 40
INTERVAL = 0.2
RETRY_AFTER = 1.0  # a client's one retry, a second later (TCP's own first retransmission comes then too)
# VRRP's own bound (3 advertisements missed plus the skew) and the time a check or a fault takes to show.
FAILOVER_GOAL = {1.0: 3.6, 0.2: 1.0}
CYCLES = {1.0: 3, 0.2: 2}
NO_RESTART = "/run/systemd/system/haproxy.service.d/zz-e2e-kept-down.conf"


@pytest.fixture(scope="module")
def ha():
    if os.geteuid() != 0:
        pytest.skip("needs root: the lab mounts overlays and boots containers with systemd-nspawn")
    started = time.monotonic()
    up = lab_command("up", "--fleet", str(HA_FLEET))
    lab = Lab(INVENTORY, None)
    run = lab.playbook("site.yml")
    assert run.returncode == 0, run.output[-6000:]
    assert len(lab.topology.vips) >= 2 and len(lab.topology.lb_hosts) >= 2
    print(f"\nHA fleet: lab up {up:.0f}s, first site.yml {run.seconds:.0f}s; VIPs "
          + ", ".join(f"{vip.address} (preferred {vip.holder})" for vip in lab.topology.vips))
    yield lab
    print(f"\nHA module: {time.monotonic() - started:.0f}s in all")
    if os.environ.get("WTSTACK_KEEP_LAB") != "1":
        lab_command("down", timeout=600)


def vip_urls(lab):
    return [f"http://{vip.address}" for vip in lab.topology.vips]


def wait_until(condition, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def settled(lab, sampler, timeout=40):
    """Wait until every VIP is on its preferred holder (preemption brings it back there)."""
    for vip in lab.topology.vips:
        wait_until(lambda vip=vip: sampler.holder_now(vip.address) == vip.holder, timeout,
                   f"{vip.address} back on {vip.holder}")


def remote_now(lab, host, command):
    """Run `command` on `host` right after reading the clock there (the lab shares this machine's
    clock): the time the fault happened, to the millisecond, without SSH's latency in it."""
    output = lab.ssh(host, f"date +%s.%N; {command}", check=False)
    return float(output.split()[0])


class Faults:
    """Each fault on a balancer, and how it is undone; each returns the time it struck."""

    def __init__(self, lab):
        self.lab = lab

    def haproxy_killed(self, lb):
        """HAProxy's master process dies (kill -9; its workers follow), and systemd may not restart it."""
        self.lab.ssh(lb, f"mkdir -p {os.path.dirname(NO_RESTART)} && printf '[Service]\\nRestart=no\\n' "
                         f"> {NO_RESTART} && systemctl daemon-reload")
        return remote_now(self.lab, lb, "kill -9 $(systemctl show --property=MainPID --value haproxy)")

    def undo_haproxy_killed(self, lb):
        self.lab.ssh(lb, f"rm -f {NO_RESTART} && systemctl daemon-reload && systemctl start haproxy")

    def keepalived_stopped(self, lb):
        return remote_now(self.lab, lb, "systemctl stop keepalived")

    def undo_keepalived_stopped(self, lb):
        self.lab.ssh(lb, "systemctl start keepalived")

    def link_down(self, lb):
        at = time.time()
        subprocess.run(["ip", "link", "set", lab_py.veth_name(lb), "down"], check=True)
        return at

    def undo_link_down(self, lb):
        subprocess.run(["ip", "link", "set", lab_py.veth_name(lb), "up"], check=True)

    def powered_off(self, lb):
        output = subprocess.run([str(Path(os.sys.executable)), str(REPO / "tests/lab/lab.py"), "stop", lb, "--kill"],
                                cwd=REPO, check=True, capture_output=True, text=True).stdout
        return float(re.search(r"plug pulled at ([0-9.]+)", output).group(1))

    def undo_powered_off(self, lb):
        lab_command("up", "--fleet", str(HA_FLEET))


FAULTS = ("haproxy_killed", "keepalived_stopped", "link_down", "powered_off")


def failover_cycles(lab, sampler, probers, load, interval):
    """Each fault CYCLES[interval] times, alternating the VIP (and so the balancer) it strikes."""
    faults = Faults(lab)
    results = {fault: [] for fault in FAULTS}
    cycle = 0
    for dummy in range(CYCLES[interval]):
        for fault in FAULTS:
            vip = lab.topology.vips[cycle % len(lab.topology.vips)]
            cycle += 1
            settled(lab, sampler)
            holder = vip.holder
            struck = getattr(faults, fault)(holder)
            wait_until(lambda vip=vip, holder=holder: sampler.holder_now(vip.address) not in (None, holder), 15,
                       f"{vip.address} to leave {holder} after {fault}")
            time.sleep(1.5)
            answered = probers[vip.address].answered_again(struck)
            moved = next(at for at, holding in sampler.holders(vip.address, since=struck)
                         if holding and holder not in holding) - struck
            getattr(faults, f"undo_{fault}")(holder)
            undone = time.time()
            wait_until(lambda vip=vip, holder=holder: sampler.holder_now(vip.address) == holder, 60,
                       f"{vip.address} back on {holder}")
            back = time.time()
            time.sleep(0.5)
            failover_failed = load.failures_between(struck - 0.5, undone)
            return_failed = load.failures_between(undone, back + 0.5)
            results[fault].append({"vip": vip.address, "holder": holder, "answered": answered, "moved": moved,
                                   "returned": back - undone, "failover_failed": failover_failed,
                                   "return_failed": return_failed,
                                   "failed_probes_on_return":
                                       probers[vip.address].failures_between(undone, back + 0.5)})
            print(f"  {time.strftime('%H:%M:%S', time.localtime(struck))} advert {interval:g}s {fault:<19} "
                  f"{vip.address} from {holder}: answered again after "
                  f"{answered if answered is None else round(answered, 2)} s (on the other balancer after "
                  f"{moved:.2f} s), requests failed {failover_failed[0]} before a retry, {failover_failed[1]} after; "
                  f"back on {holder} {back - undone:.1f} s after the fault was undone, requests failed "
                  f"{return_failed[0]} before a retry, {return_failed[1]} after")
    return results


def test_each_vip_is_held_by_its_preferred_balancer_and_answers(ha):
    sampler = VipSampler(ha.topology.lb_hosts, [vip.address for vip in ha.topology.vips]).start()
    try:
        settled(ha, sampler)
    finally:
        sampler.stop()
    for url in vip_urls(ha):
        whoami = subprocess.run(["curl", "-s", "-m", "5", f"{url}/whoami"], capture_output=True, text=True,
                                check=False).stdout
        assert '"prefix"' in whoami, (url, whoami)
    run = ha.playbook("playbooks/status.yml")
    assert run.returncode == 0, run.output[-3000:]
    lbs = list(ha.topology.lb_hosts)
    for vip in ha.topology.vips:
        row = re.search(rf"'{re.escape(vip.address)}\s+{vip.router_id}\s+{vip.holder}\s+(.*?)'", run.output, re.S)
        assert row, run.output[-3000:]
        states = re.split(r"\s{2,}", " ".join(row.group(1).split("\n")).strip())
        assert states[lbs.index(vip.holder)] == "MASTER holds", (vip.address, states)
        assert all(state == "BACKUP" for index, state in enumerate(states) if index != lbs.index(vip.holder)), states


def test_failover_keeps_every_session_and_its_state(ha):
    vips = [vip.address for vip in ha.topology.vips]
    prefixes = [instance.prefix for instance in ha.topology.instances]
    sampler = VipSampler(ha.topology.lb_hosts, vips).start()
    probers = {vip: VipProber(f"http://{vip}/whoami").start() for vip in vips}
    load = SessionLoad(vip_urls(ha), prefixes, sessions=SESSIONS, interval=INTERVAL, counting=True,
                       retry_after=RETRY_AFTER, max_seconds=1500).start()
    results = {}
    try:
        results[1.0] = failover_cycles(ha, sampler, probers, load, 1.0)
        before = len(sampler.samples)
        run = ha.playbook("site.yml", "-e", "haproxy_vrrp_advert_interval=0.2")
        assert run.returncode == 0, run.output[-6000:]
        assert "keepalived.conf" in run.output
        reconfigured = sampler.samples[before:]
        assert all(sample == reconfigured[0][1] for dummy, sample in reconfigured), "a VIP moved on a keepalived reload"
        results[0.2] = failover_cycles(ha, sampler, probers, load, 0.2)
    finally:
        load.stop()
        for prober in probers.values():
            prober.stop()
        sampler.stop()
        restored = ha.playbook("site.yml")
        assert restored.returncode == 0, restored.output[-6000:]

    print(f"\nfailover under load ({load.summary()}):")
    for interval, by_fault in results.items():
        for fault, cycles in by_fault.items():
            print(f"  advert {interval:g}s {fault:<19} answered again: {describe([c['answered'] for c in cycles])}; "
                  f"VIP on the other balancer: {describe([c['moved'] for c in cycles])}; back on its holder: "
                  f"{describe([c['returned'] for c in cycles])}; failed probes while it returned: "
                  f"{sum(c['failed_probes_on_return'] for c in cycles)}")
    doubles, gaps = sampler.violations(longest_without=FAILOVER_GOAL[1.0])
    cycles = sum(len(by_fault_cycles) for by_fault in results.values() for by_fault_cycles in by_fault.values())
    print(f"  {len(sampler.samples)} samples of {len(vips)} VIPs on {len(ha.topology.lb_hosts)} balancers over "
          f"{cycles} failover and recovery cycles: {len(doubles)} with two holders, {len(gaps)} gaps over "
          f"{FAILOVER_GOAL[1.0]} s")
    assert cycles >= 20
    for at, addresses in sampler.evidence:
        print(f"  two holders at {time.strftime('%H:%M:%S', time.localtime(at))}.{int(at % 1 * 1000):03d}, "
              f"each balancer's namespace and addresses right after: {addresses}")
    assert not doubles, doubles[:10]
    assert not gaps, gaps[:10]
    for interval, by_fault in results.items():
        for fault, fault_cycles in by_fault.items():
            for cycle in fault_cycles:
                assert cycle["answered"] is not None and cycle["answered"] <= FAILOVER_GOAL[interval], \
                    (interval, fault, cycle)
    load.assert_no_failed_request(ha)
    assert not load.moves, load.moves[:10]
    assert not load.counter_faults, load.counter_faults[:10]


def test_balancers_roll_one_by_one_with_no_failed_request(ha):
    vips = [vip.address for vip in ha.topology.vips]
    prefixes = [instance.prefix for instance in ha.topology.instances]
    sampler = VipSampler(ha.topology.lb_hosts, vips).start()
    settled(ha, sampler)
    load = SessionLoad(vip_urls(ha), prefixes, sessions=SESSIONS, interval=INTERVAL, counting=True,
                       max_seconds=600).start()
    try:
        run = ha.playbook("playbooks/rolling_balancers.yml")
    finally:
        time.sleep(1)
        load.stop()
        sampler.stop()
    print(f"\nrolling_balancers.yml in {run.seconds:.0f}s: {load.summary()}")
    assert run.returncode == 0, run.output[-6000:]
    load.assert_no_failed_request(ha)
    assert not load.moves and not load.counter_faults, (load.moves[:5], load.counter_faults[:5])
    doubles, gaps = sampler.violations(longest_without=FAILOVER_GOAL[1.0])
    assert not doubles and not gaps, (doubles[:5], gaps[:5])
    for vip in ha.topology.vips:
        assert sampler.holder_now(vip.address) == vip.holder


def test_a_browser_session_goes_on_through_the_new_holder_after_its_balancer_dies(ha, browser):
    """The page's WebSocket runs through the VIP's holder; the holder is powered off, so its connections
    vanish without a reset. The browser learns it at its next message (a click): that message is lost with
    the connection (Wt's client does not send a WebSocket message again), the page reconnects through the
    VIP's new holder to the same instance and session, and the next click counts on from where it was."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    sampler = VipSampler(ha.topology.lb_hosts, [vip.address for vip in ha.topology.vips]).start()
    vip = ha.topology.vips[0]
    try:
        settled(ha, sampler)
        browser.get(f"http://{vip.address}/")
        wait = WebDriverWait(browser, 30)
        wait.until(lambda d: d.find_element(By.ID, "wtstack-counter"))
        session_id = browser.find_element(By.ID, "wtstack-session-id").text
        for expected in (1, 2):
            browser.find_element(By.ID, "wtstack-increment").click()
            wait.until(lambda d, n=str(expected): d.find_element(By.ID, "wtstack-counter").text == n)
        sockets = {params["requestId"] for method, params in network_events(browser)
                   if method == "Network.webSocketCreated"}
        assert sockets, "the page opened no WebSocket"

        struck = Faults(ha).powered_off(vip.holder)
        wait_until(lambda: sampler.holder_now(vip.address) not in (None, vip.holder), 15, f"{vip.address} to move")
        clicks = 0
        while browser.find_element(By.ID, "wtstack-counter").text == "2":
            assert clicks < 3, "three clicks after the failover and the counter never moved"
            browser.find_element(By.ID, "wtstack-increment").click()
            clicks += 1
            with contextlib.suppress(TimeoutException):
                WebDriverWait(browser, 5).until(lambda d: d.find_element(By.ID, "wtstack-counter").text != "2")
        counted = int(browser.find_element(By.ID, "wtstack-counter").text)
        assert counted == 3, f"the counter went from 2 to {counted}: the session's state did not survive"
        browser.find_element(By.ID, "wtstack-increment").click()
        wait.until(lambda d: d.find_element(By.ID, "wtstack-counter").text == "4")
        answered = time.time()
        assert browser.find_element(By.ID, "wtstack-session-id").text == session_id
        reopened = [params for method, params in network_events(browser) if method == "Network.webSocketCreated"]
        print(f"\nbrowser through {vip.address}: {vip.holder} powered off; {clicks} click(s) to reach the session "
              f"again through the new holder (a click travelling the dead WebSocket is lost with it), then 3, 4 on "
              f"the same session, {answered - struck:.1f} s after the power-off; WebSockets opened again: "
              f"{len(reopened)}")
    finally:
        Faults(ha).undo_powered_off(vip.holder)
        settled(ha, sampler)
        sampler.stop()


def test_without_preemption_a_vip_stays_where_it_went_until_handed_back_gracefully(ha):
    """haproxy_vrrp_preempt: false. The returning balancer does not take its VIP back (nothing is reset then);
    wtstack.fleet.vrrp_vip hands it back without a failed request. Neither reconfiguration moves a VIP."""
    vips = [vip.address for vip in ha.topology.vips]
    vip = ha.topology.vips[0]
    other = next(lb for lb in ha.topology.lb_hosts if lb != vip.holder)
    sampler = VipSampler(ha.topology.lb_hosts, vips).start()
    settled(ha, sampler)
    load = SessionLoad(vip_urls(ha), [instance.prefix for instance in ha.topology.instances], sessions=SESSIONS,
                       interval=INTERVAL, counting=True, max_seconds=600).start()
    faults = Faults(ha)
    try:
        before = len(sampler.samples)
        run = ha.playbook("site.yml", "-e", "haproxy_vrrp_preempt=false")
        assert run.returncode == 0, run.output[-6000:]
        assert all(sample == sampler.samples[before][1] for dummy, sample in sampler.samples[before:]), \
            "a VIP moved when keepalived reloaded"
        faults.keepalived_stopped(vip.holder)
        wait_until(lambda: sampler.holder_now(vip.address) == other, 15, f"{vip.address} on {other}")
        faults.undo_keepalived_stopped(vip.holder)
        time.sleep(12)  # longer than preempt_delay plus three advertisements
        assert sampler.holder_now(vip.address) == other, "the VIP went back although preemption is off"
        handed = time.time()
        run = ha.ansible(other, "wtstack.fleet.vrrp_vip",
                         json.dumps({"vips": [{"name": vip.name, "address": vip.address}], "state": "released"}))
        assert run.returncode == 0, run.output[-3000:]
        wait_until(lambda: sampler.holder_now(vip.address) == vip.holder, 15, f"{vip.address} back on {vip.holder}")
        back = time.time() - handed
        run = ha.ansible(other, "wtstack.fleet.vrrp_vip",
                         json.dumps({"vips": [{"name": vip.name, "address": vip.address}], "state": "candidate"}))
        assert run.returncode == 0, run.output[-3000:]
        restored = ha.playbook("site.yml")
        assert restored.returncode == 0, restored.output[-6000:]
    finally:
        time.sleep(1)
        load.stop()
        sampler.stop()
    print(f"\nno preemption: {vip.address} stayed on {other} after {vip.holder} came back; handed back in "
          f"{back:.1f} s (vrrp_vip, one ad-hoc run); {load.summary()}")
    load.assert_no_failed_request(ha)
    assert not load.moves and not load.counter_faults
    doubles, gaps = sampler.violations(longest_without=FAILOVER_GOAL[1.0])
    assert not doubles and not gaps, (doubles[:5], gaps[:5])
