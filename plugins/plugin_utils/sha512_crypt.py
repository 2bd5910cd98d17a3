# -*- coding: utf-8 -*-
# Copyright: wtstack.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""SHA-512 crypt ("$6$"), the password hash HAProxy's userlists check with crypt(3).

Pure Python after Ulrich Drepper's specification (https://www.akkadia.org/drepper/SHA-crypt.txt),
because ansible.builtin.password_hash needs passlib, which this collection does not depend on.
A given salt gives a given hash, so a file holding it is rewritten only when the password changes.
"""

from __future__ import annotations

import hashlib
import re

SALT_PATTERN = re.compile(r"^[./0-9A-Za-z]{1,16}$")
ROUNDS = 5000  # the default, which "$6$salt$..." implies
_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Byte order of the final encoding, three bytes (four characters) at a time; byte 63 comes last alone.
_ORDER = ((0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
          (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54), (34, 55, 13),
          (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41))


def _encode(value, length):
    return "".join(_ALPHABET[(value >> (6 * index)) & 0x3F] for index in range(length))


def _repeat(digest, length):
    return (digest * (length // len(digest) + 1))[:length]


def sha512_crypt(password, salt):
    """The "$6$<salt>$<hash>" crypt(3) string for password (str) with salt ([./0-9A-Za-z], 1 to 16)."""
    if not isinstance(password, str):
        raise TypeError("the password must be a string")
    if not isinstance(salt, str) or not SALT_PATTERN.match(salt):
        raise ValueError("the salt must be 1 to 16 characters from [./0-9A-Za-z]")
    key, salt_bytes = password.encode("utf-8"), salt.encode("ascii")

    alternate = hashlib.sha512(key + salt_bytes + key).digest()
    context = hashlib.sha512(key + salt_bytes + _repeat(alternate, len(key)))
    length = len(key)
    while length:
        context.update(alternate if length & 1 else key)
        length >>= 1
    digest = context.digest()

    key_sequence = _repeat(hashlib.sha512(key * len(key)).digest(), len(key))
    salt_sequence = _repeat(hashlib.sha512(salt_bytes * (16 + digest[0])).digest(), len(salt_bytes))

    for round_number in range(ROUNDS):
        context = hashlib.sha512(key_sequence if round_number & 1 else digest)
        if round_number % 3:
            context.update(salt_sequence)
        if round_number % 7:
            context.update(key_sequence)
        context.update(digest if round_number & 1 else key_sequence)
        digest = context.digest()

    encoded = "".join(_encode((digest[a] << 16) | (digest[b] << 8) | digest[c], 4) for a, b, c in _ORDER)
    return f"$6${salt}${encoded}{_encode(digest[63], 2)}"
