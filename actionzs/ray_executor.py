"""The Ray engine: the per-video step on a pool of Ray actors, results streamed back in order.

Each actor loads the model once (from its `ModelRef`, on the node it lands on) and keeps it; it
embeds one video per call with a `LocalExecutor` of its own (decoding overlapped with encoding,
every decoder call bounded in time), so its results are the local engine's, video for video.
Videos are named by path: every node must see the same files at the same paths (shared storage).

The driver (this process) gives each actor one video at a time, keeps at most `in_flight` videos
submitted and not yet yielded (back-pressure), and yields the results in the order of the sources:
the caller alone writes them (the scan's JSONL, the library's index), so nothing is torn or
doubled. A worker killed mid-video is restarted by Ray (`max_restarts`) and the video submitted
again once the actor answers (`task_retries` times; the driver counts, so a video is charged only
for the deaths of workers that held it); a video that kills its worker every time, or fails, is
that video's error and the others go on. A model that fails to load is a `ModelLoadError`, within `ready_timeout`.
When the driver stops early (Ctrl-C, an error), the actors are killed.

Ray is an optional dependency (`pip install "actionzs[ray]"`): it is imported only inside the
functions here, never when the package loads.
"""

from __future__ import annotations

import os
import pickle
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence

from .errors import ActionzsError, InvalidInputError, ModelLoadError
from .options import RunOptions, check_count
from .stream import DECODE_TIMEOUT

#: How to get Ray, in the message of every "Ray is missing" error.
EXTRA = 'pip install "actionzs[ray]"'
#: Seconds to wait for the actors to be placed and to load the model before giving up.
READY_TIMEOUT = 600.0
#: Times a video is tried again on a restarted actor after its worker died under it.
TASK_RETRIES = 2


def import_ray():
    """The `ray` module, or an InvalidInputError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise InvalidInputError(f"--engine ray needs Ray, which is not installed ({exc}): {EXTRA}") from None
    return ray


class _Worker:
    """One actor: the model, loaded once, and the local per-video step. A load failure is kept and
    reported by `ready` (an actor whose constructor raised would only say that it died)."""

    def __init__(self, ref, decode_workers: int, decode_timeout: float):
        from .executor import LocalExecutor

        self.executor = LocalExecutor(decode_workers, decode_timeout)
        self.encoder, self.failure = None, None
        try:
            self.encoder = ref.loaded()
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"

    def ready(self) -> tuple[str | None, int, str]:
        """(the load failure or None, this worker's process id, its node)."""
        import socket

        return self.failure, os.getpid(), socket.gethostname()

    def embed(self, source, run: RunOptions, opener, batch_size: int):
        """The source's embeddings, or the error that stopped it (as a value: a failed video is not
        a failed call, which Ray would retry)."""
        if self.failure is not None:
            return ModelLoadError(f"the model could not be loaded on a Ray worker: {self.failure}")
        [outcome] = self.executor.embed_each([source], self.encoder, run, opener, batch_size)
        return _portable(outcome) if isinstance(outcome, Exception) else outcome


def _portable(exc: Exception) -> Exception:
    """`exc` if it pickles (actionzs's errors do), else an ActionzsError with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return ActionzsError(f"{type(exc).__name__}: {exc}")


class RayExecutor:
    """Runs the per-video step on Ray actors, with `LocalExecutor.embed_each`'s contract.

    `address`: a running cluster to connect to ("auto", "ray://head:10001", ...); None starts a
    local Ray instance unless this process is connected already. Each actor reserves `num_cpus`
    CPUs and `num_gpus` GPUs (fractions allowed); `actors` is how many (None: as many as the
    cluster's resources hold, at most one per video). `in_flight`: videos submitted and not yet
    yielded, the one yielded next included (None: two per actor); each actor holds one at a time. `task_retries`: times a video is tried again after its
    worker died under it (the actor is restarted each time).
    """

    def __init__(self, address: str | None = None, *, num_cpus: float = 1.0, num_gpus: float = 0.0,
                 actors: int | None = None, in_flight: int | None = None, decode_workers: int = 1,
                 decode_timeout: float = DECODE_TIMEOUT, ready_timeout: float = READY_TIMEOUT,
                 task_retries: int = TASK_RETRIES):
        check_count("decode_workers", decode_workers)
        for name, value in (("--ray-actors", actors), ("in_flight", in_flight)):
            if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 10_000):
                raise InvalidInputError(f"{name} must be a whole number from 1 to 10000, got {value!r}")
        for name, value in (("--ray-num-cpus", num_cpus), ("--ray-num-gpus", num_gpus)):
            if not (isinstance(value, (int, float)) and 0 <= value < float("inf")):
                raise InvalidInputError(f"{name} must be a number >= 0, got {value!r}")
        if num_cpus == 0 and num_gpus == 0:
            raise InvalidInputError("each Ray actor needs some resource: give --ray-num-cpus or --ray-num-gpus above 0")
        self.address = address
        self.num_cpus, self.num_gpus = float(num_cpus), float(num_gpus)
        self.actors = actors
        self.in_flight = in_flight
        self.decode_workers = decode_workers
        self.decode_timeout = decode_timeout
        self.ready_timeout = ready_timeout
        self.task_retries = task_retries
        self._pool: list = []
        self._pids: list[int] = []
        self._ref = None
        self._started = False  # whether this executor started the Ray instance (and so shuts it down)

    # -- the cluster and the actors -------------------------------------------------------------

    def _connect(self):
        ray = import_ray()
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False, logging_level="WARNING")  # the cluster's own settings
            else:
                wanted = (self.actors or 1) * self.num_cpus
                ray.init(num_cpus=max(os.cpu_count() or 1, int(-(-wanted // 1))), include_dashboard=False,
                         log_to_driver=False, logging_level="WARNING")
                self._started = True
        return ray

    def _actors_wanted(self, ray, videos: int) -> int:
        """How many actors: as asked, else as many as the cluster holds; an error if none fits."""
        total = ray.cluster_resources()
        fits = [total.get("CPU", 0) / self.num_cpus if self.num_cpus else float("inf"),
                total.get("GPU", 0) / self.num_gpus if self.num_gpus else float("inf")]
        holds = int(min(fits) + 1e-9)
        if holds < 1:
            raise InvalidInputError(
                f"the Ray cluster has {total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs; an actor asks for "
                f"{self.num_cpus:g} CPUs and {self.num_gpus:g} GPUs (--ray-num-cpus, --ray-num-gpus)"
            )
        return max(1, min(self.actors or holds, videos))

    def _ensure_pool(self, ray, encoder, videos: int) -> None:
        ref = getattr(encoder, "ref", None)
        if ref is None:
            raise InvalidInputError(
                f"the Ray engine loads the model by name in each actor, and {encoder.name!r} was built from "
                "objects in memory; load it with actionzs.load_encoder"
            )
        wanted = self._actors_wanted(ray, videos)
        if self._pool and ref == self._ref and len(self._pool) >= wanted:  # an earlier call's, the model loaded
            return
        self.close_actors()
        remote = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_restarts=-1)(_Worker)
        pool = [remote.remote(ref, self.decode_workers, self.decode_timeout) for _ in range(wanted)]
        self._pool, self._ref = pool, ref
        self._check_ready(ray)

    def _check_ready(self, ray) -> None:
        """Every actor placed and its model loaded, or a ModelLoadError within `ready_timeout`."""
        waiting = {actor.ready.remote(): actor for actor in self._pool}
        done, late = ray.wait(list(waiting), num_returns=len(waiting), timeout=self.ready_timeout)
        try:
            if late:
                raise ModelLoadError(
                    f"{len(late)} of {len(waiting)} Ray actors were not ready after {self.ready_timeout:g} s (placed "
                    f"and the model loaded): does the cluster have {self.num_cpus:g} CPUs and {self.num_gpus:g} GPUs free for each?"
                )
            answers = ray.get(list(waiting))  # all done: in the pool's order
            for failure, _, node in answers:
                if failure is not None:
                    raise ModelLoadError(f"the model could not be loaded on a Ray worker (on {node}): {failure}")
            self._pids = [pid for _, pid, _ in answers]
        except BaseException:
            self.close_actors()
            raise

    def worker_pids(self, current: bool = False) -> list[int]:
        """The process id of each actor's worker when it became ready (for tests and diagnostics);
        `current`: asked of the actors now (each answers once the calls before it are done)."""
        if not current:
            return list(self._pids)
        ray = import_ray()
        return [pid for _, pid, _ in ray.get([actor.ready.remote() for actor in self._pool])]

    def close_actors(self) -> None:
        if self._pool:
            ray = import_ray()
            for actor in self._pool:
                ray.kill(actor, no_restart=True)
        self._pool, self._ref, self._pids = [], None, []

    def close(self) -> None:
        """Kill the actors; shut the Ray instance down if this executor started it."""
        self.close_actors()
        if self._started:
            import_ray().shutdown()
            self._started = False

    # -- the per-video step, on the actors --------------------------------------------------------

    def embed_each(
        self,
        sources: Sequence,
        encoder,
        run: RunOptions,
        opener,
        batch_size: int,
        meanwhile: Callable[[], object] | None = None,
        progress=None,
    ) -> Iterator:
        """Each source's embeddings, or the error that stopped it, in order. `meanwhile` runs in
        this thread once the first videos are submitted. `progress` is not told of batches: an
        actor embeds a whole video per call, so the classifier reports each video as it comes back."""
        sources = list(sources)
        if not sources:
            if meanwhile is not None:
                meanwhile()
            return
        ray = self._connect()
        self._ensure_pool(ray, encoder, len(sources))
        yield from self._stream(ray, sources, run, opener, batch_size, meanwhile)

    def _stream(self, ray, sources, run, opener, batch_size, meanwhile) -> Iterator:
        """Give each actor one video at a time (so the video a dead worker held is the one that is
        retried, and the one that fails when it dies every time, never one queued behind it), at
        most `ahead` submitted and not yet yielded; yield in order. After a worker dies its actor
        is asked until it answers again (Ray restarts it) before it is given another video."""
        pool = self._pool
        ahead = self.in_flight or 2 * len(pool)
        idle = deque(range(len(pool)))
        running: dict = {}  # object ref -> (position, actor)
        probes: dict = {}  # object ref of a `ready` call -> actor coming back after a death
        later: list[tuple[float, int]] = []  # (when, actor): ask again then
        back_by: dict[int, float] = {}  # actor -> when it must answer again at the latest
        results: dict = {}  # position -> outcome, done but not yet yielded
        tries: dict[int, int] = {}  # position -> workers that died under it
        retry: deque = deque()  # positions to submit again, before new ones
        submitted = head = 0
        try:
            while head < len(sources):
                while idle and (retry or (submitted < len(sources) and submitted - head < ahead)):
                    if retry:
                        k = retry.popleft()
                    else:
                        k, submitted = submitted, submitted + 1
                    actor = idle.popleft()
                    running[pool[actor].embed.remote(sources[k], run, opener, batch_size)] = (k, actor)
                if meanwhile is not None:
                    meanwhile()
                    meanwhile = None
                if head in results:
                    outcome = results.pop(head)
                    head += 1
                    if isinstance(outcome, ModelLoadError):  # a restarted actor could not load it: no video can be done
                        raise outcome
                    yield outcome
                    continue
                now = time.monotonic()
                for when, actor in [entry for entry in later if entry[0] <= now]:
                    later.remove((when, actor))
                    probes[pool[actor].ready.remote()] = actor
                refs = [*running, *probes]
                timeout = max(0.0, min(when for when, _ in later) - now) if later else None
                if not refs:
                    time.sleep(timeout or 0.0)
                    continue
                ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
                for ref in ready:
                    if ref in running:
                        k, actor = running.pop(ref)
                        try:
                            results[k] = ray.get(ref)
                        except ray.exceptions.RayError as exc:  # its worker died (or was restarting)
                            tries[k] = tries.get(k, 0) + 1
                            if tries[k] > self.task_retries:
                                results[k] = self._failed(sources[k], exc)
                            else:
                                retry.append(k)
                            back_by.setdefault(actor, time.monotonic() + self.ready_timeout)
                            probes[pool[actor].ready.remote()] = actor
                        else:
                            idle.append(actor)
                        continue
                    actor = probes.pop(ref)
                    try:
                        failure, _, node = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # still restarting
                        if time.monotonic() > back_by[actor]:
                            raise ActionzsError(f"a Ray actor did not come back within {self.ready_timeout:g} s of its "
                                                f"worker's death ({type(exc).__name__})") from None
                        later.append((time.monotonic() + 0.25, actor))
                        continue
                    if failure is not None:
                        raise ModelLoadError(f"the model could not be loaded on a restarted Ray worker (on {node}): {failure}")
                    del back_by[actor]
                    idle.append(actor)
        finally:
            if head < len(sources) or probes or later:  # stopped early (Ctrl-C, the caller closed it), or unsettled
                self.close_actors()

    @staticmethod
    def _failed(source, exc: Exception) -> Exception:
        """The error of a video whose worker died under it on every try."""
        from .embed import source_name
        from .errors import VideoDecodeError

        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return VideoDecodeError(source_name(source), f"the Ray worker embedding it failed ({type(exc).__name__}: {reason})")
