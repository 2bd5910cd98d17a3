import shutil
import subprocess

import pytest
from ansible_collections.wtstack.fleet.plugins.plugin_utils.sha512_crypt import sha512_crypt


def test_the_specifications_test_vector():
    # https://www.akkadia.org/drepper/SHA-crypt.txt, first SHA-512 example (5000 rounds implied).
    assert sha512_crypt("Hello world!", "saltstring") == (
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1")


@pytest.mark.parametrize("password", ["p", "s3cret", "x" * 64, "y" * 200, "pässwörd with spaces"])
@pytest.mark.parametrize("salt", ["a", "abcdef0123456789", "./AZaz09"])
def test_agrees_with_openssl(password, salt):
    if not shutil.which("openssl"):
        pytest.skip("missing tool: openssl is not installed (apt-get install openssl)")
    expected = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=password.encode(),
                              capture_output=True, check=True).stdout.decode().strip()
    assert sha512_crypt(password, salt) == expected


@pytest.mark.parametrize("salt", ["", "x" * 17, "bad$salt", None])
def test_a_bad_salt_is_refused(salt):
    with pytest.raises(ValueError):
        sha512_crypt("password", salt)
