"""A uid of its own for each sandboxed run, from a reserved range, leased with a lock file per
uid that every server process on the machine shares (the app and `evaluate` alike).

The kernel counts processes per uid (RLIMIT_NPROC): had every run the same uid, one run holding
its processes would make a concurrent run's `fork()` fail. Only a server running as root can
give a run another uid; an ordinary user's server runs programs in a user namespace instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import pwd
import random
import stat
import time

from ..errors import E2PError

# Above the usual user and system ranges, below the 16-bit overflow uid 65534 (so also inside
# a container that maps only 65,536 uids), and in none of systemd's dynamic-user ranges.
UID_RANGE = range(64_000, 64_256)
LEASE_DIR = "/run/e2p-sandbox/uids"
_WAIT_S = 5.0


class NoUidFree(E2PError):
    """Every uid of the range is leased by a run in progress."""


@contextlib.contextmanager
def leased_uid():
    """Hold a uid of UID_RANGE that no other run on this machine holds; give it back after."""
    folder = _lease_dir()
    candidates = list(_free_of_accounts())
    deadline = time.monotonic() + _WAIT_S
    while True:
        random.shuffle(candidates)  # servers starting together do not all try the same uid first
        for uid in candidates:
            fd = os.open(os.path.join(folder, f"{uid}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield uid
            finally:
                os.close(fd)  # closing the file releases its lock, also if the server dies
            return
        if time.monotonic() >= deadline:
            raise NoUidFree(f"all {len(candidates)} sandbox uids are in use by runs in progress: try again")
        time.sleep(0.01)


@functools.lru_cache(maxsize=1)
def _lease_dir() -> str:
    os.makedirs(LEASE_DIR, mode=0o700, exist_ok=True)
    info = os.lstat(LEASE_DIR)
    # Another user's folder (or a link) there would let them hold or fake leases.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise E2PError(f"{LEASE_DIR} is not a folder of this user's alone: the sandbox cannot lease uids")
    return LEASE_DIR


@functools.lru_cache(maxsize=1)
def _free_of_accounts() -> tuple[int, ...]:
    """The range less any uid an account of this machine uses (its files and processes)."""
    free = []
    for uid in UID_RANGE:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            free.append(uid)
    return tuple(free)
