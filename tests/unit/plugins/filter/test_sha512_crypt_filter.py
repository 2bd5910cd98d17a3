import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.wtstack.fleet.plugins.filter.sha512_crypt import FilterModule, sha512_crypt


def test_registered_under_its_documented_name():
    assert FilterModule().filters() == {"sha512_crypt": sha512_crypt}


def test_same_password_and_salt_give_the_same_hash():
    first = sha512_crypt("s3cret", "lb1salt")
    assert first.startswith("$6$lb1salt$") and first == sha512_crypt("s3cret", "lb1salt")
    assert first != sha512_crypt("s3cret", "lb2salt")


def test_a_bad_salt_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="salt must be"):
        sha512_crypt("s3cret", "no spaces allowed")
