"""Instruments for the high-availability tests: who holds each VIP, sampled; when a VIP answers again.

The HA fleet is on the lab's private network: each host is a network namespace of this machine
(`lab.py`'s `netns_name`), so the sampler looks into each balancer's namespace directly (setns in a
thread of its own, then the kernel's table of local addresses in /proc/thread-self/net): every balancer
at the same instant, every 100 ms, with no SSH and no process per sample. A balancer whose namespace is
gone (powered off) holds nothing.
"""

import ctypes
import http.client
import importlib.util
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("wtstack_lab_for_ha", REPO / "tests/lab/lab.py")
lab_py = importlib.util.module_from_spec(_spec)
sys.modules["wtstack_lab_for_ha"] = lab_py
_spec.loader.exec_module(lab_py)

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def local_addresses():
    """The IPv4 addresses this thread's network namespace holds: the kernel's own table of local
    addresses (/32 host LOCAL entries of fib_trie), read through /proc/thread-self, which follows the
    thread into the namespace setns() put it in. (A test bind() to the address, tried before, also
    succeeded in a namespace that held no address at all, while the lab created it.)"""
    found, last = set(), None
    with open("/proc/thread-self/net/fib_trie") as trie:
        for line in trie:
            words = line.split()
            if len(words) == 2 and words[0] in ("|--", "+--") and "/" not in words[1]:
                last = words[1]
            elif last and words[:3] == ["/32", "host", "LOCAL"]:
                found.add(last)
    return found


class VipSampler:
    """Every `interval` seconds: for each balancer, the VIPs it holds. samples: [(time, {lb: set})]."""

    def __init__(self, balancers, vips, interval=0.1):
        self.balancers, self.vips, self.interval = list(balancers), list(vips), interval
        self.samples = []
        self.evidence = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)
        return self

    def _run(self):
        # setns moves only this thread: the sampler's own, never the test's.
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            while not self._stop.is_set():
                now = time.time()
                sample = self._snapshot()
                if _libc.setns(home, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back home failed")
                self.samples.append((now, sample))
                if any(sum(vip in held for held in sample.values()) > 1 for vip in self.vips):
                    self.evidence.append((now, self._addresses()))
                self._stop.wait(max(0.0, self.interval - (time.time() - now)))
        finally:
            os.close(home)

    def _addresses(self):
        """Each balancer's namespace (inode) and addresses, as `ip` lists them: the evidence kept for a
        sample with two holders, to tell a real overlap from a misreading."""
        found = {}
        for lb in self.balancers:
            path = f"/run/netns/{lab_py.netns_name(lb)}"
            try:
                inode = os.stat(path).st_ino
            except OSError:
                inode = None
            listing = subprocess.run(["ip", "-n", lab_py.netns_name(lb), "-o", "-4", "addr", "show"],
                                     capture_output=True, text=True, check=False).stdout
            found[lb] = (inode, [line.split()[3] for line in listing.splitlines() if len(line.split()) > 3])
        return found

    def _snapshot(self):
        """Every balancer's VIPs at one instant: the balancers are read one after the other, so a VIP
        moving between two reads would show on both or on neither; a snapshot counts only when two reads
        in a row agree (a move takes milliseconds, a read microseconds)."""
        previous = None
        for dummy in range(10):
            sample = {lb: self._held_by(lb) for lb in self.balancers}
            if sample == previous:
                return sample
            previous = sample
        return previous

    def _held_by(self, lb):
        try:
            fd = os.open(f"/run/netns/{lab_py.netns_name(lb)}", os.O_RDONLY)
        except OSError:
            return set()
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                return set()
            held = local_addresses()
            return {vip for vip in self.vips if vip in held}
        finally:
            os.close(fd)

    def holders(self, vip, since=0.0, until=float("inf")):
        """[(time, [balancers holding vip])] between two times."""
        return [(at, sorted(lb for lb, held in sample.items() if vip in held))
                for at, sample in self.samples if since <= at <= until]

    def holder_now(self, vip):
        if not self.samples:
            return None
        at, sample = self.samples[-1]
        holding = [lb for lb, held in sample.items() if vip in held]
        return holding[0] if len(holding) == 1 else None

    def violations(self, longest_without):
        """Samples with two or more holders of a VIP, and gaps with none longer than `longest_without` s."""
        doubles, gaps = [], []
        for vip in self.vips:
            empty_since = None
            for at, holding in self.holders(vip):
                if len(holding) > 1:
                    doubles.append((vip, at, holding))
                if not holding and empty_since is None:
                    empty_since = at
                elif holding and empty_since is not None:
                    if at - empty_since > longest_without:
                        gaps.append((vip, empty_since, round(at - empty_since, 2)))
                    empty_since = None
            if empty_since is not None and self.samples and self.samples[-1][0] - empty_since > longest_without:
                gaps.append((vip, empty_since, round(self.samples[-1][0] - empty_since, 2)))
        return doubles, gaps


@dataclass
class Probe:
    started: float
    ended: float
    ok: bool


@dataclass
class VipProber:
    """A request to `url` (a session-less one) every `interval` seconds, each on its own connection and
    thread with `timeout`: when the VIP stops and starts answering, to the request."""

    url: str
    interval: float = 0.05
    timeout: float = 2.0
    probes: list = field(default_factory=list)

    def __post_init__(self):
        parsed = self.url.split("://", 1)[1]
        self._host, dummy, rest = parsed.partition("/")
        self._path = "/" + rest
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)
        time.sleep(self.timeout)
        return self

    def _run(self):
        while not self._stop.is_set():
            threading.Thread(target=self._probe, daemon=True).start()
            self._stop.wait(self.interval)

    def _probe(self):
        started = time.time()
        ok = False
        try:
            connection = http.client.HTTPConnection(self._host, 80, timeout=self.timeout)
            connection.request("GET", self._path, headers={"Connection": "close"})
            ok = connection.getresponse().status == 200
            connection.close()
        except OSError:
            ok = False
        with self._lock:
            self.probes.append(Probe(started, time.time(), ok))

    def answered_again(self, fault_at, within=60):
        """Seconds from `fault_at` to the first answer to a probe started after it (a probe whose SYN
        was lost is answered when TCP sends it again, so slow answers count when they come); None if
        none was answered within `within` s."""
        with self._lock:
            answers = [probe.ended for probe in self.probes
                       if fault_at <= probe.started <= fault_at + within and probe.ok]
        return min(answers) - fault_at if answers else None

    def failures_between(self, since, until):
        with self._lock:
            return sum(1 for probe in self.probes if since <= probe.started <= until and not probe.ok)


def describe(seconds):
    values = [value for value in seconds if value is not None]
    if not values:
        return "none"
    return f"median {statistics.median(values):.2f} s, worst {max(values):.2f} s over {len(values)}"
