# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the pip bootstrap script that ansible-test downloads from its own file host.

ansible-test creates a virtual environment without pip for every sanity test and runs this
script in it as ``python get_pip.py --disable-pip-version-check pip==X [setuptools==Y] [--no-setuptools]
[--no-wheel]``. Where only the package registries are reachable, ``make sanity`` copies this file to
``~/.ansible/test/cache/get_pip_<version>.py`` (ansible-test's documented place for a manually
provided script): it installs the bundled pip with ensurepip, then the requested versions from the
package index, so the environment ends up the same.
"""

import subprocess
import sys


def main(argv):
    requested = [arg for arg in argv if arg not in ("--no-setuptools", "--no-wheel")]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + requested)
    if "--no-setuptools" in argv:
        subprocess.check_call([sys.executable, "-m", "pip", "uninstall", "--yes", "setuptools"])


if __name__ == "__main__":
    main(sys.argv[1:])
