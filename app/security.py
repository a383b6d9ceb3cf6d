"""Password hashing with argon2id, run off the event loop because each hash costs CPU time."""

import asyncio
from functools import lru_cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher


@lru_cache
def _password_hash() -> PasswordHash:
    # argon2-cffi's defaults are the RFC 9106 "second recommended" argon2id parameters.
    return PasswordHash((Argon2Hasher(),))


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_password_hash().hash, password)


async def verify_password(password: str, password_hash: str) -> bool:
    return await asyncio.to_thread(_password_hash().verify, password, password_hash)
