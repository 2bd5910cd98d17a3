"""The end-to-end fixtures: a real fleet (tests/lab) converged by the real site.yml.

The lab comes up once per test session with tests/e2e/fleet.yml (two load balancers on
Debian 13 and 12, two app hosts, twelve Wt instances) and goes down at the end, unless
WTSTACK_KEEP_LAB=1 (handy while developing: the next run reuses the running lab).
"""

import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from ansible_collections.wtstack.fleet.plugins.module_utils.haproxy_runtime.client import DEFAULT_SOCKET
from ansible_collections.wtstack.fleet.plugins.module_utils.topology import build_topology

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
BIN = Path(sys.executable).parent
FLEET = Path(os.environ.get("WTSTACK_E2E_FLEET", REPO / "tests/e2e/fleet.yml"))
INVENTORY = REPO / ".lab/inventory.yml"
# The lab's Ansible settings (no host key checking: its hosts get new keys when recreated), not the
# checkout's ansible.cfg, which is for users' own inventories.
LAB_CONFIG = REPO / "tests/lab/ansible.cfg"
SSH_KEY = REPO / ".lab/ssh/id_ed25519"
# Runs on a load balancer: one runtime API command in argv[1], its reply on stdout.
RUNTIME_API_SCRIPT = """
import socket, sys
client = socket.socket(socket.AF_UNIX)
client.connect(__SOCKET__)
client.sendall(sys.argv[1].encode() + b"\\n")
reply = b""
while chunk := client.recv(65536):
    reply += chunk
sys.stdout.write(reply.decode())
""".replace("__SOCKET__", repr(DEFAULT_SOCKET))
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def children_cpu_seconds():
    """CPU seconds of the processes this one has waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def lab_command(*args, timeout=1800):
    started = time.monotonic()
    subprocess.run([sys.executable, str(REPO / "tests/lab/lab.py"), *args], cwd=REPO, check=True, timeout=timeout)
    return time.monotonic() - started


@dataclass
class PlaybookRun:
    returncode: int
    output: str
    seconds: float
    # The controller's CPU: ansible-playbook and every process it waited for (its workers, ssh).
    cpu_seconds: float = 0.0

    def recap(self):
        """{host: {"ok": n, "changed": n, "unreachable": n, "failed": n}} from PLAY RECAP."""
        return {host: dict(zip(("ok", "changed", "unreachable", "failed"), map(int, counts)))
                for host, *counts in RECAP.findall(self.output)}


class Lab:
    def __init__(self, inventory_path, installed_collections):
        self.inventory_path = inventory_path
        # Playbooks named by FQCN (wtstack.fleet.site) run from the collection built and installed
        # like a user would; paths (site.yml, playbooks/...) run from the checkout.
        self.installed_collections = installed_collections
        inventory = yaml.safe_load(inventory_path.read_text())
        self.groups = {"all": []}
        self.hostvars = {}
        group_vars = {}
        for group, body in inventory["all"]["children"].items():
            self.groups[group] = list(body["hosts"])
            for host, hostvars in body["hosts"].items():
                if host not in self.hostvars:
                    self.groups["all"].append(host)
                self.hostvars.setdefault(host, {}).update(hostvars or {})
                group_vars.setdefault(host, {}).update(body.get("vars") or {})
        for host, variables in group_vars.items():  # a host's own variables win over its groups'
            self.hostvars[host] = {**variables, **self.hostvars[host]}
        self.topology = build_topology(self.groups, self.hostvars)

    @property
    def output_dir(self):
        path = REPO / "tests/output"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def address(self, host):
        return self.hostvars[host]["ansible_host"]

    def url(self, lb):
        return f"http://{self.address(lb)}"

    def balancer_of(self, url):
        """The load balancer a URL of the tests goes to (http:// or https://, by its address)."""
        address = urllib.parse.urlsplit(url).hostname
        return next(lb for lb in self.topology.lb_hosts if self.address(lb) == address)

    @property
    def lb_urls(self):
        return [self.url(lb) for lb in self.topology.lb_hosts]

    def ssh(self, host, command, check=True, timeout=60, stdin=None):
        result = subprocess.run(
            ["ssh", "-i", str(SSH_KEY), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"root@{self.address(host)}", command],
            input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{host}: `{command}` failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def playbook_command(self, playbook, *args, inventory=None, bin_dir=BIN):
        """(argv, env) of ansible-playbook as the tests run it (from `bin_dir`: another ansible-core)."""
        env = {**os.environ, "ANSIBLE_CONFIG": str(LAB_CONFIG), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_FORCE_COLOR": "0"}
        if playbook.startswith("wtstack.fleet."):
            env["ANSIBLE_COLLECTIONS_PATH"] = str(self.installed_collections)
        return [str(bin_dir / "ansible-playbook"), "-i", str(inventory or self.inventory_path), playbook, *args], env

    def playbook(self, playbook, *args, timeout=1500, inventory=None, bin_dir=BIN):
        argv, env = self.playbook_command(playbook, *args, inventory=inventory, bin_dir=bin_dir)
        started, cpu_before = time.monotonic(), children_cpu_seconds()
        result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        run = PlaybookRun(result.returncode, result.stdout + result.stderr, time.monotonic() - started,
                          children_cpu_seconds() - cpu_before)
        self.save_log(playbook, run.output)
        return run

    def ansible(self, pattern, module, args, timeout=300):
        """An ad-hoc module run (`ansible PATTERN -m MODULE -a ARGS`), as root on the hosts."""
        argv, env = self.playbook_command("unused")
        argv = [str(BIN / "ansible"), "-i", str(self.inventory_path), pattern, "-m", module, "-a", args]
        started = time.monotonic()
        result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        run = PlaybookRun(result.returncode, result.stdout + result.stderr, time.monotonic() - started)
        self.save_log(f"ansible-{module.rsplit('.', 1)[-1]}", run.output)
        return run

    def save_log(self, playbook, output):
        log = self.output_dir / f"{playbook.rsplit('/', 1)[-1].removesuffix('.yml')}-{int(time.time())}.log"
        log.write_text(output)

    def interrupted_playbook(self, playbook, *args, kill_after, timeout=600, inventory=None):
        """Run a playbook and SIGKILL it (with its ssh children) once a line of its output matches
        `kill_after`, as a lost terminal or a killed CI job would; returns the output up to then."""
        argv, env = self.playbook_command(playbook, *args, inventory=inventory)
        started = time.monotonic()
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, start_new_session=True)
        lines = []
        try:
            for line in process.stdout:
                lines.append(line)
                if re.search(kill_after, line, re.M) or time.monotonic() - started > timeout:
                    break
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        output = "".join(lines)
        self.save_log(playbook, output)
        assert re.search(kill_after, output, re.M), f"never reached {kill_after!r}:\n{output[-3000:]}"
        return PlaybookRun(process.returncode, output, time.monotonic() - started)

    def runtime_api(self, lb, command):
        """One command on the load balancer's HAProxy runtime API socket."""
        return self.ssh(lb, f"python3 - {shlex.quote(command)}", stdin=RUNTIME_API_SCRIPT)

    def snapshot_stall(self, started, base_url, session_id, local_port):
        """While a request hangs: the sockets on the host (one network namespace for the whole lab)
        and the balancer's streams and server connections, so the next stall says where it hangs.
        The whole picture goes to tests/output; what concerns this request's client port is printed,
        because CI keeps only what a run prints."""
        lb = self.balancer_of(base_url)
        address = self.address(lb)
        sockets = subprocess.run(["ss", "-tnoip", "exclude", "time-wait", f"( src {address} or dst {address} )"],
                                 capture_output=True, text=True, check=False).stdout
        streams = self.runtime_api(lb, "show sess all")
        connections = self.runtime_api(lb, "show servers conn")
        snapshot_at = time.time()
        path = self.output_dir / f"stall-{started:.3f}-{lb}.log"
        path.write_text(f"request started {started:.3f} via {lb} for session {session_id}, client port "
                        f"{local_port}; snapshot at {snapshot_at:.3f}\n\n=== ss (host)\n{sockets}\n"
                        f"=== show sess all ({lb})\n{streams}\n=== show servers conn ({lb})\n{connections}")
        port = f":{local_port} "
        lines = sockets.splitlines()
        client_sockets = [f"{line}\n{details}" for line, details in zip(lines, lines[1:] + [""])
                          if port in line]  # each socket, with ss's line of timers and counters
        stream = [block for block in re.split(r"\n(?=0x[0-9a-f]+: \[)", streams)
                  if port in block.split("\n", 1)[0] + " "]  # its first line ends with source=<ip>:<port>
        print(f"\n=== request via {lb} (session {session_id}, client port {local_port}) unanswered after "
              f"{snapshot_at - started:.1f}s; everything in {path}\n--- its sockets on the host\n"
              + "\n".join(client_sockets or ["(none: the client is not connected)"])
              + f"\n--- its stream on {lb}\n"
              + ("\n".join(stream) or "(none: HAProxy has not got its whole header yet, or is done with it)"))

    def server_status(self, lb, backend="wt"):
        """{server name: status} as HAProxy's `show stat` reports it (UP, DOWN, MAINT, DRAIN, ...)."""
        lines = self.runtime_api(lb, "show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line.strip()]
        return {row["svname"]: row["status"] for row in rows
                if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_for_status(self, lb, server, wanted, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            status = self.server_status(lb).get(server)
            if status is not None and status.split()[0] in wanted:
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"{lb}: {server} stayed {status}, wanted {wanted} within {timeout}s")
            time.sleep(0.5)


def install_collection(workdir):
    """Build the collection tarball and install it into a fresh collections path, as a user would."""
    galaxy = str(BIN / "ansible-galaxy")
    # Without the ANSIBLE_* settings make exports (ANSIBLE_CONFIG): installed as a user installs the tarball.
    env = {name: value for name, value in os.environ.items() if not name.startswith("ANSIBLE_")}
    subprocess.run([galaxy, "collection", "build", "--force", "--output-path", str(workdir)], cwd=REPO,
                   env=env, check=True, capture_output=True, text=True)
    tarball = next(workdir.glob("wtstack-fleet-*.tar.gz"))
    installed = workdir / "collections"
    subprocess.run([galaxy, "collection", "install", "--force", str(tarball), "-p", str(installed)], cwd=workdir,
                   env=env, check=True, capture_output=True, text=True)
    assert (installed / "ansible_collections/wtstack/fleet/playbooks/site.yml").is_file(), "install failed"
    return installed


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root: the lab mounts overlays and boots containers with systemd-nspawn")
    installed = install_collection(tmp_path_factory.mktemp("collection"))
    seconds = lab_command("up", "--fleet", str(FLEET))
    print(f"\nlab up took {seconds:.0f}s")
    yield Lab(INVENTORY, installed)
    if os.environ.get("WTSTACK_KEEP_LAB") != "1":
        lab_command("down", timeout=600)


@pytest.fixture(scope="session")
def converged(lab):
    """The first converge of the fresh lab, by the installed collection's wtstack.fleet.site."""
    run = lab.playbook("wtstack.fleet.site")
    print(f"\nfirst wtstack.fleet.site (installed collection) took {run.seconds:.0f}s")
    assert run.returncode == 0, run.output[-6000:]
    assert str(lab.installed_collections) in run.output, "the run did not use the installed collection"
    return run


@pytest.fixture
def browser():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        pytest.skip(f"missing tool: {', '.join(missing)} (apt-get install chromium chromium-driver; "
                    "make test-packages installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="wtstack-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-quic", "--no-first-run", f"--user-data-dir={profile}", "--window-size=1000,700"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def network_events(driver):
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        yield message["method"], message.get("params", {})
