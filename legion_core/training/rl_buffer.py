"""The RL transition buffer of the lifelong trainer (docs/method.md#rehearsal). Called a replay buffer in the
RL literature; in this project "replay" names only bag playback and regression checks.

Policies (the run report always says which one was used, because `keep_all` is full rehearsal of every
past task, not memory-constrained continual learning):
- `keep_all`: the original's setting — capacity 10M, never full in practice, nothing is evicted.
- `fifo`: ring buffer; the oldest transitions go first (the original's class with a small capacity).
- `reservoir`: classic reservoir sampling over the whole stream (Vitter's algorithm R), without the
  original's bugs (its index never advanced and its randint was off by one).

A separate `DemoBuffer` holds scripted-expert episodes for optional RLPD-style demonstration seeding:
a fixed fraction of every batch is drawn from it (Ball et al. 2023, "Efficient online RL with offline
data").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

POLICIES = ("keep_all", "fifo", "reservoir")
_FIELDS = ("obs", "action", "reward", "next_obs", "not_done", "task_id")


class TransitionBuffer:
    def __init__(self, capacity: int, obs_dim: int, action_dim: int, policy: str = "keep_all") -> None:
        if policy not in POLICIES:
            raise ValueError(f"replay policy must be one of {POLICIES}, got {policy!r}")
        self.capacity = int(capacity)
        self.policy = policy
        self.obs_dim, self.action_dim = obs_dim, action_dim
        # Lazily grown storage: a 10M keep_all buffer must not allocate 10M rows up front.
        self._alloc = 0
        self._data: dict[str, np.ndarray] = {}
        self._grow(min(self.capacity, 4096))
        self.size = 0  # filled rows
        self.seen = 0  # transitions offered so far (reservoir)
        self.ptr = 0  # next write slot (fifo)
        self.evicted = 0

    def _grow(self, n: int) -> None:
        n = min(max(n, 1), self.capacity)
        shapes = {
            "obs": (n, self.obs_dim),
            "action": (n, self.action_dim),
            "reward": (n, 1),
            "next_obs": (n, self.obs_dim),
            "not_done": (n, 1),
            "task_id": (n,),
        }
        new = {}
        for k, shp in shapes.items():
            arr = np.zeros(shp, np.int64 if k == "task_id" else np.float32)
            if k in self._data:
                arr[: self._alloc] = self._data[k][: self._alloc]
            new[k] = arr
        self._data, self._alloc = new, n

    def add(self, obs, action, reward, next_obs, not_done, task_id, rng: np.random.Generator) -> None:
        self.seen += 1
        if self.size < self.capacity:
            slot = self.size
            self.size += 1
            if slot >= self._alloc:
                self._grow(self._alloc * 2)
        elif self.policy == "reservoir":
            j = int(rng.integers(0, self.seen))  # uniform over [0, seen): keep with prob capacity/seen
            if j >= self.capacity:
                return
            slot = j
            self.evicted += 1
        else:  # fifo (keep_all only reaches here if the stream outgrows its capacity)
            slot = self.ptr
            self.ptr = (self.ptr + 1) % self.capacity
            self.evicted += 1
        d = self._data
        d["obs"][slot] = obs
        d["action"][slot] = action
        d["reward"][slot] = reward
        d["next_obs"][slot] = next_obs
        d["not_done"][slot] = not_done
        d["task_id"][slot] = task_id

    def sample_idx(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty transition buffer")
        return rng.integers(0, self.size, size=n)

    def gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[idx] for k, v in self._data.items()}

    def task_counts(self) -> dict[int, int]:
        ids, counts = np.unique(self._data["task_id"][: self.size], return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts)}

    # -- checkpoints -----------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        meta = np.array([self.capacity, self.size, self.seen, self.ptr, self.evicted], np.int64)
        tmp = Path(str(path) + ".tmp.npz")
        np.savez(
            tmp, meta=meta, policy=np.array(self.policy), **{k: v[: self.size] for k, v in self._data.items()}
        )
        tmp.replace(path)

    def load(self, path: Path) -> None:
        with np.load(path) as z:
            cap, size, seen, ptr, evicted = (int(v) for v in z["meta"])
            if str(z["policy"]) != self.policy or cap != self.capacity:
                raise ValueError(
                    f"{path}: buffer was saved with policy={z['policy']}, capacity={cap}; this run uses "
                    f"policy={self.policy}, capacity={self.capacity}"
                )
            self._alloc, self._data = 0, {}
            self._grow(max(size, 1))
            for k in _FIELDS:
                self._data[k][:size] = z[k]
        self.size, self.seen, self.ptr, self.evicted = size, seen, ptr, evicted


class DemoBuffer(TransitionBuffer):
    """Scripted-expert transitions (never evicted); sampled for a fixed fraction of each batch."""

    def __init__(self, obs_dim: int, action_dim: int, capacity: int = 1_000_000) -> None:
        super().__init__(capacity, obs_dim, action_dim, policy="keep_all")
