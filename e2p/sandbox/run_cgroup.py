"""A memory + pids cgroup for each sandboxed run, so that one run, with all its processes,
memfds, tmpfs pages and kernel memory, cannot take more than its share of the host.

Per-process limits (address space, process count per uid) do not add up to a limit on a run:
four processes under a 1 GB address-space limit hold 4 GB, and memory in memfds or a tmpfs
counts against no address space. A cgroup counts them all, kernel memory (slab) included.

cgroup v2 is used where the server's cgroup tree offers the memory and pids controllers;
otherwise the v1 `memory` and `pids` hierarchies. Each run's cgroup sits in `e2p-sandbox/`
under the server's own cgroup (so the server's own limits still bound it) and is removed when
the run ends. Where no cgroup can be made (no such controllers, or no permission),
`support()` says why and runs keep only their per-process limits.
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
import time
from dataclasses import dataclass

GROUP = "e2p-sandbox"
_COUNTER = itertools.count()


@dataclass(frozen=True)
class Support:
    version: int  # 1 or 2; 0 where runs get no cgroup
    parents: tuple[str, ...]  # the e2p-sandbox folders runs' cgroups go in (v1: memory, then pids)
    reason: str = ""  # why runs get no cgroup

    @property
    def available(self) -> bool:
        return self.version > 0


class RunCgroup:
    """One run's cgroup: made with its limits, joined by bubblewrap (so all of the run), removed after."""

    def __init__(self, support: Support, memory_bytes: int, max_tasks: int):
        self.version = support.version
        name = f"run-{os.getpid()}-{next(_COUNTER)}"
        self.dirs = tuple(os.path.join(parent, name) for parent in support.parents)
        made = []
        try:
            for folder in self.dirs:
                os.mkdir(folder, 0o755)
                made.append(folder)
            if self.version == 2:
                _write(self.dirs[0], "memory.max", memory_bytes)
                _write(self.dirs[0], "memory.swap.max", 0, optional=True)
                _write(self.dirs[0], "memory.oom.group", 1)  # a kill takes the whole run
                _write(self.dirs[0], "pids.max", max_tasks)
            else:
                _write(self.dirs[0], "memory.limit_in_bytes", memory_bytes)
                _write(self.dirs[0], "memory.memsw.limit_in_bytes", memory_bytes, optional=True)
                _write(self.dirs[1], "pids.max", max_tasks)
        except OSError:
            for folder in reversed(made):
                _rmdir(folder)
            raise

    def enter(self) -> None:
        """Move the calling thread, alone, into the cgroup (cgroup v1, whose controllers take
        threads one by one): what it starts from then on is in it from birth. A thread moving
        itself is cheap; moving another process (`add`) takes a lock whose first taking after a
        quiet spell waits out an RCU grace period, ~10 ms on a busy machine."""
        for folder in self.dirs:
            _write(folder, "tasks", 0)  # 0: the writing thread

    def leave(self) -> None:
        """Move the calling thread back to the server's own cgroups (those above e2p-sandbox/)."""
        for folder in self.dirs:
            _write(os.path.dirname(os.path.dirname(folder)), "tasks", 0)

    def add(self, *pids: int) -> None:
        """Move processes (each with all its threads) into the cgroup, in every hierarchy."""
        for folder in self.dirs:
            for pid in pids:  # one pid per write(): the kernel takes one at a time
                _write(folder, "cgroup.procs", pid)

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the run for going over the memory limit."""
        events = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            with open(os.path.join(self.dirs[0], events)) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value) > 0
        except (OSError, ValueError):
            pass
        return False

    def pids(self) -> list[int]:
        try:
            with open(os.path.join(self.dirs[0], "cgroup.procs")) as f:
                return [int(pid) for pid in f.read().split()]
        except (OSError, ValueError):
            return []

    def close(self) -> None:
        """Kill whatever of the run is left, then remove the cgroup."""
        deadline = time.monotonic() + 2.0
        # Never the server: a thread of it that failed to `leave` would list it here (v1).
        while (pids := [pid for pid in self.pids() if pid != os.getpid()]) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.005)
        for folder in self.dirs:
            _rmdir(folder)


@functools.lru_cache(maxsize=1)
def support() -> Support:
    """Where runs' cgroups can go, probed once per process by making one and removing it."""
    mounts = _cgroup_mounts()
    own = _own_cgroups()
    tried = []
    v2 = mounts.get("cgroup2")
    if v2 and "" in own:
        parent, why_not = _v2_parent(os.path.join(v2, own[""].lstrip("/")))
        if parent is not None:
            return _probed(Support(2, (parent,)))
        tried.append(why_not)
    if "memory" in mounts and "pids" in mounts and "memory" in own and "pids" in own:
        parents = []
        try:
            for controller in ("memory", "pids"):
                parent = os.path.join(mounts[controller], own[controller].lstrip("/"), GROUP)
                os.makedirs(parent, mode=0o755, exist_ok=True)
                parents.append(parent)
        except OSError as e:
            tried.append(f"cgroup v1 is not writable here ({e.strerror})")
        else:
            return _probed(Support(1, tuple(parents)))
    else:
        tried.append("no cgroup v1 memory and pids hierarchies")
    return Support(0, (), "; ".join(tried))


def _probed(found: Support) -> Support:
    _sweep(found)
    try:
        RunCgroup(found, 64 * 1024**2, 8).close()
    except OSError as e:
        return Support(0, (), f"a run's cgroup cannot be made under {found.parents[0]} ({e.strerror})")
    return found


def _v2_parent(own: str) -> tuple[str | None, str]:
    """(the e2p-sandbox folder under the server's v2 cgroup with memory and pids enabled for its
    children, ""), or (None, why not) where the tree offers no such thing."""
    try:
        with open(os.path.join(own, "cgroup.controllers")) as f:
            controllers = f.read().split()
    except OSError:
        return None, "cgroup v2: the server's cgroup cannot be read"
    if not {"memory", "pids"} <= set(controllers):
        return None, "cgroup v2 offers no memory and pids controllers here"
    parent = os.path.join(own, GROUP)
    try:
        # The server's cgroup must hand the controllers down; cgroup v2 refuses that while it
        # holds processes itself, unless it is the root (or the controllers are already on).
        with open(os.path.join(own, "cgroup.subtree_control")) as f:
            enabled = set(f.read().split())
        if not {"memory", "pids"} <= enabled:
            _write(own, "cgroup.subtree_control", "+memory +pids")
        os.makedirs(parent, mode=0o755, exist_ok=True)
        _write(parent, "cgroup.subtree_control", "+memory +pids")
    except OSError as e:
        return None, f"cgroup v2: the memory and pids controllers cannot be handed to the runs ({e.strerror})"
    return parent, ""


def _cgroup_mounts() -> dict[str, str]:
    """Mount points: 'cgroup2' for the v2 tree, each v1 controller name for its hierarchy."""
    found = {}
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return found
    for line in lines:
        fields, _, rest = line.partition(" - ")
        parts, tail = fields.split(), rest.split()
        if len(parts) < 5 or len(tail) < 3 or parts[3] != "/":  # only whole hierarchies
            continue
        where = parts[4].replace("\\040", " ")
        if tail[0] == "cgroup2":
            found.setdefault("cgroup2", where)
        elif tail[0] == "cgroup":
            for option in tail[2].split(","):
                if option in ("memory", "pids"):
                    found.setdefault(option, where)
    return found


def _own_cgroups() -> dict[str, str]:
    """The server's cgroup in each hierarchy: '' for v2, a controller name for v1."""
    found = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for name in controllers.split(","):
                    found[name] = path
    except (OSError, ValueError):
        pass
    return found


def _sweep(found: Support) -> None:
    """Remove run cgroups left by server processes that are gone (an empty cgroup is removable)."""
    for parent in found.parents:
        try:
            names = os.listdir(parent)
        except OSError:
            continue
        for name in names:
            parts = name.split("-")
            if len(parts) == 3 and parts[0] == "run" and parts[1].isdigit() and not _alive(int(parts[1])):
                _rmdir(os.path.join(parent, name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write(folder: str, name: str, value, optional: bool = False) -> None:
    path = os.path.join(folder, name)
    if optional and not os.path.exists(path):
        return
    with open(path, "w") as f:
        f.write(str(value))


def _rmdir(folder: str) -> None:
    # The kernel can still hold a cgroup whose last task has just exited: retry briefly.
    for _ in range(50):
        try:
            os.rmdir(folder)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.002)
