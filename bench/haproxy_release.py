"""Another HAProxy release as the balancer under test: the one a Debian suite ships, run in a chroot.

The lab's image of that suite (tests/lab/lab.py builds and caches it with debootstrap; its apt
cache already holds haproxy's packages) is mounted as the lower layer of an overlay, haproxy is
installed into the upper layer, and the benchmark's work directory is bind-mounted at the same path
inside, so configuration, map, sockets and state files have one path for both sides. The HAProxy
under test then runs as `chroot ROOT /usr/sbin/haproxy` in the host's network namespace. Needs root.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "lab"))

import lab  # noqa: E402

ROOT = REPO / ".cache" / "bench-haproxy"


def _mount(*arguments):
    subprocess.run(["mount", *map(str, arguments)], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def chroot_haproxy(suite, workdir):
    """Yields the command that runs `suite`'s haproxy with `workdir` visible at its own path."""
    lab.require_root()
    image = lab.ensure_image(suite)
    base = ROOT / suite
    lab.unmount_under(base)  # left over by a killed run
    lab.remove_tree(base)
    upper, work, merged = base / "upper", base / "work", base / "merged"
    for directory in (upper, work, merged):
        directory.mkdir(parents=True)
    try:
        _mount("-t", "overlay", "overlay", "-o", f"lowerdir={image},upperdir={upper},workdir={work}", merged)
        for name in ("proc", "dev"):
            _mount("--bind", f"/{name}", merged / name)
        install = subprocess.run(
            ["chroot", str(merged), "apt-get", "install", "-y", "-qq", "--no-install-recommends", "--no-download",
             "haproxy"], capture_output=True, text=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                                              "DEBIAN_FRONTEND": "noninteractive"}, check=False)
        if install.returncode != 0:
            raise RuntimeError(f"installing haproxy into the {suite} image failed:\n{install.stdout}{install.stderr}")
        inside = merged / str(workdir).lstrip("/")
        inside.mkdir(parents=True, exist_ok=True)
        _mount("--bind", workdir, inside)
        yield ["chroot", str(merged), "/usr/sbin/haproxy"]
    finally:
        lab.unmount_under(base)
        lab.remove_tree(base)
