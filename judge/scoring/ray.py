"""Scale-out scoring on Ray: the same judging, spread over N Ray actors ("replicas"), each holding
one backend built by `judge.backends.factory.make_backend` and judging its batches through
`judge.scoring.judging.iter_verdicts`, the one judging path. The driver (the `judgeforge score` process)
keeps everything that makes a run trustworthy: it cuts the pending (item, order) calls into the same
batches a single process would, hands one batch at a time to each idle replica, and gives the
caller each batch's verdicts as it comes back, so `score` appends and fsyncs them exactly as it does
for one process. Killing the driver loses the batches in flight (at most one per replica).

Ray core, not Ray Data: a batch's verdicts must reach the driver's append log one batch at a time,
a dead replica's batch must be handed to its replacement (not retried as an anonymous task), and
the work is a plain list of small records, with no dataset to shard or shuffle. Actors and
`ray.wait` say exactly that in a hundred lines; `ray[data]` would add pyarrow conversion of every
record and its own retry policy for nothing here.

Cluster: `address` (or RAY_ADDRESS) joins a running one (`ray start --head`, KubeRay); without it
a local cluster is started for the run (no dashboard, logs in a temp folder, listening on 127.0.0.1
only) and stopped after it, leaving no Ray process behind. A caller that already called `ray.init` keeps its connection.
Replica resources come from the backend: vllm `tensor_parallel_size` GPUs, hf one GPU, openai one
CPU; on a cluster without GPUs a local model gets an even share of the CPUs instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from judge.backends.base import Backend, BackendError, GenerationParams
from judge.core.errors import ConfigError
from judge.core.records import Item, Verdict
from judge.scoring.judging import iter_verdicts, orders_for
from judge.templates import Template

MAX_ATTEMPTS = 3  # a batch (or a replica's start) is tried this often before the run stops


@dataclass
class _Batch:
    calls: list[tuple[Item, str]]
    attempts: int = 0


class _Replica:
    """One Ray actor: one backend, judging batches through the one judging path."""

    def __init__(self, config, template: Template, params: GenerationParams, backend: Backend | None):
        self.config, self.template, self.params, self.backend = config, template, params, backend

    def start(self) -> dict:
        """Build the backend (loading the model); raises what make_backend raises (a bad path)."""
        import ray

        from judge.backends.factory import make_backend

        if self.backend is None:
            self.backend = make_backend(self.config)
        return {"name": self.backend.name, "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(),
                "dtype": getattr(self.backend, "dtype", None)}

    def judge(self, calls: list[tuple[Item, str]]) -> tuple[list[Verdict], str | None]:
        """The verdicts of `calls` (a slice of the run's pending calls, item by item), and the
        message of a BackendError that stopped the batch (its answered calls' verdicts kept)."""
        items = list({item.id: item for item, _ in calls}.values())  # ids are unique in a run
        wanted = {(item.id, order) for item, order in calls}
        done = {(i.id, o) for i in items for o in orders_for(self.config.swap, self.template.mode)} - wanted
        verdicts: list[Verdict] = []
        try:
            for batch in iter_verdicts(items, self.template, self.backend, mode=self.config.mode, swap=self.config.swap,
                                       batch_size=len(calls), params=self.params, done=done):
                verdicts.extend(batch)
        except BackendError as e:
            return verdicts, str(e)
        return verdicts, None


def replica_resources(backend: str, tensor_parallel_size: int, cluster: dict, replicas: int) -> dict:
    """Ray resources for one replica: GPUs for a local model where the cluster has them, else an even
    share of the CPUs (torch and vLLM's CPU build use as many threads as Ray grants: OMP_NUM_THREADS).

    >>> replica_resources("vllm", 2, {"CPU": 32, "GPU": 8}, 4)
    {'num_cpus': 1, 'num_gpus': 2}
    >>> replica_resources("hf", 1, {"CPU": 2}, 2)
    {'num_cpus': 1, 'num_gpus': 0}
    >>> replica_resources("openai", 1, {"CPU": 2, "GPU": 1}, 16)
    {'num_cpus': 1, 'num_gpus': 0}
    """
    if backend == "openai":
        return {"num_cpus": 1, "num_gpus": 0}
    if cluster.get("GPU"):
        return {"num_cpus": 1, "num_gpus": tensor_parallel_size if backend == "vllm" else 1}
    return {"num_cpus": max(1, int(cluster.get("CPU", 1)) // replicas), "num_gpus": 0}


class RayReplicas:
    """N replicas of the backend `config` names on a Ray cluster, as a context manager:

        with RayReplicas(config, template, params, replicas=4) as pool:
            for verdicts in pool.iter_verdicts(items, done=done, progress=bar):
                log.append(verdicts)

    `backend`, when given, is copied to every replica instead of building one (tests pass a fake)."""

    def __init__(self, config, template: Template, params: GenerationParams, *, replicas: int,
                 address: str | None = None, backend: Backend | None = None):
        if replicas < 1:
            raise ConfigError(f"--ray-replicas must be 1 or more, got {replicas}")
        if config.backend != "openai":  # there `model` is a served name, not a path
            config = replace(config, model=_local_path(config.model), adapter=_local_path(config.adapter))
        self.config = config
        self.template, self.params, self.backend, self.replicas = template, params, backend, replicas
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.name = ""
        self.dtype = None  # the replicas' judge.backends.dtype.DtypeChoice (local models)
        self.replaced = 0
        self._start_deaths = 0  # replicas in a row that died while building their backend
        self._tempdir: str | None = None
        self._owns_ray = False
        self._idle: list = []
        self._cluster: dict = {}
        self._resources: dict = {}

    def start(self) -> RayReplicas:
        """Connect to (or start) the cluster and wait until every replica has built its backend."""
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError("--ray-replicas needs Ray: pip install 'judgeforge[ray]'") from None
        try:
            self._connect()
            self._resources = replica_resources(self.config.backend, self.config.tensor_parallel_size, self._cluster,
                                                self.replicas)
            self._check_fits()
            self._idle = self._start([self._spawn() for _ in range(self.replicas)])
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop the replicas, and the local cluster if this run started it (no Ray process is left)."""
        import ray

        if ray.is_initialized():
            for actor in self._idle:
                ray.kill(actor)  # on a joined cluster, free their GPUs now rather than when the driver leaves
            self._idle = []
            if self._owns_ray:
                ray.shutdown()
                self._owns_ray = False
        if self._tempdir:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    def __enter__(self) -> RayReplicas:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _connect(self) -> None:
        import ray

        if not ray.is_initialized():
            quiet = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            if self.address:
                join_cluster(self.address, **quiet)
            else:  # "local": a cluster of our own even if `ray start` left one on this machine; GPUs auto-detected
                self._tempdir = tempfile.mkdtemp(prefix="jf-ray-")  # short: Ray's socket paths live in it
                start_local_cluster(max(_usable_cpus(), self.replicas), self._tempdir, **quiet)
            self._owns_ray = True
        self._cluster = ray.cluster_resources()

    def _check_fits(self) -> None:
        """A replica the cluster can never place would wait forever: refuse instead."""
        for key, unit in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
            need = self._resources[key] * self.replicas
            if need > self._cluster.get(unit, 0):
                raise ConfigError(f"--ray-replicas {self.replicas} needs {need:g} {unit}s "
                                  f"({self._resources[key]:g} per replica) but the Ray cluster has "
                                  f"{self._cluster.get(unit, 0):g}")

    def _spawn(self):
        import ray

        actor = ray.remote(_Replica).options(max_restarts=0, max_task_retries=0, **self._resources)
        return actor.remote(self.config, self.template, self.params, self.backend)

    def _replace(self, dead, error: Exception, *, starting: bool):
        """A new replica, starting, for one that died (killed for good, in case it is only unreachable).
        Replicas that keep dying while they build their backend (no memory for it) stop the run."""
        import ray

        self._start_deaths = self._start_deaths + 1 if starting else 0
        if self._start_deaths >= MAX_ATTEMPTS:
            raise BackendError(f"Ray replicas keep dying while loading the backend ({self._start_deaths} in a row): "
                               f"{error}")
        ray.kill(dead)
        self.replaced += 1
        replacement = self._spawn()
        return replacement, replacement.start.remote()

    def _started(self, ref) -> None:
        started = _get(ref)
        self.name, self.dtype = started["name"], started["dtype"]  # dtype: chosen on the replica's own node
        self._start_deaths = 0

    def _start(self, actors: list) -> list:
        """Wait until `actors` have built their backends; a dead one is replaced."""
        import ray

        started, pending = [], {actor.start.remote(): actor for actor in actors}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            actor = pending.pop(ready[0])
            try:
                self._started(ready[0])
                started.append(actor)
            except ray.exceptions.RayActorError as e:
                replacement, ref = self._replace(actor, e, starting=True)
                pending[ref] = replacement
        return started

    def iter_verdicts(self, items: Sequence[Item], *, done: set[tuple[str, str]] | None = None,
                      progress=None) -> Iterator[list[Verdict]]:
        """As `judge.scoring.judging.iter_verdicts`, over the replicas: the pending calls cut into the same
        batches, each batch's verdicts yielded as it comes back (in completion order). A replica
        that dies has its batch judged by a replacement; a BackendError stops the run after the
        batches in flight come back (their verdicts yielded first)."""
        import ray

        orders = orders_for(self.config.swap, self.template.mode)
        pending = [(item, order) for item in items for order in orders if not done or (item.id, order) not in done]
        size = self.config.batch_size
        queue = deque(_Batch(pending[start:start + size]) for start in range(0, len(pending), size))
        in_flight: dict = {}  # ObjectRef -> (actor, batch); a batch is None while the actor starts
        error = None
        try:
            while in_flight or (queue and error is None):
                while self._idle and queue and error is None:
                    actor, batch = self._idle.pop(), queue.popleft()
                    batch.attempts += 1
                    in_flight[actor.judge.remote(batch.calls)] = (actor, batch)
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                actor, batch = in_flight.pop(ready[0])
                try:
                    result = self._started(ready[0]) if batch is None else _get(ready[0])
                except ray.exceptions.RayActorError as e:  # the replica died (killed, OOM, node lost)
                    if batch is not None and batch.attempts >= MAX_ATTEMPTS:
                        raise BackendError(f"a batch of {len(batch.calls)} calls killed {batch.attempts} Ray "
                                           f"replicas: {e}") from None
                    if batch is not None:
                        queue.appendleft(batch)
                    replacement, ref = self._replace(actor, e, starting=batch is None)
                    in_flight[ref] = (replacement, None)
                    continue
                if batch is None:  # a replacement is ready
                    self._idle.append(actor)
                    continue
                verdicts, failure = result
                self._idle.append(actor)
                if verdicts:
                    yield verdicts
                if failure is None:
                    if progress is not None:
                        progress.update(len(batch.calls))
                else:
                    error = error or failure
        finally:  # stopped early (an error, or the caller's): free the busy replicas
            for actor, _ in in_flight.values() if ray.is_initialized() else ():
                ray.kill(actor)
        if error is not None:
            raise BackendError(error)

    def describe(self) -> dict:
        """For the manifest: the executor, its replicas, and the cluster they ran on."""
        import ray

        return {"executor": "ray", "ray_version": ray.__version__, "replicas": self.replicas,
                "cluster": self.address or "local", "replica_resources": self._resources,
                "cluster_resources": {k: v for k, v in self._cluster.items() if not k.startswith("node:")},
                "nodes": sum(k.startswith("node:") and k != "node:__internal_head__" for k in self._cluster),
                "replicas_replaced": self.replaced}


def start_local_cluster(num_cpus: int, temp_dir: str, **options) -> None:
    """`ray.init` of a cluster of our own on this machine, listening on 127.0.0.1 only: by default
    Ray's daemons and workers listen on every interface, open to anyone on the network."""
    with _loopback_kept():
        import ray

        ray.init(address="local", num_cpus=num_cpus, _temp_dir=temp_dir, _node_ip_address="127.0.0.1", **options)


def join_cluster(address: str, **options) -> None:
    """`ray.init` joining the cluster at `address`; one on loopback (such as a cluster started by
    start_local_cluster) is reached on loopback, not through the machine's outward address where
    nothing listens."""
    import ray

    host = address.rpartition(":")[0] if ":" in address else address
    if host in ("127.0.0.1", "localhost"):
        with _loopback_kept():
            ray.init(address=address, _node_ip_address="127.0.0.1", **options)
    else:
        ray.init(address=address, **options)


@contextlib.contextmanager
def _loopback_kept():
    """Ray replaces a loopback address (the node's, and a GCS address to join) by the machine's
    outward one unless its cluster mode is off (its single-machine mode on macOS and Windows): the
    mode is off inside this block."""
    from ray._private import ray_constants

    cluster_mode = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = cluster_mode


def _get(ref):
    """ray.get, raising a replica's own exception (a ConfigError for a bad model path) as itself."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        raise e.cause from None


def _local_path(path: str | None) -> str | None:
    """A path that exists here, made absolute: replicas do not share the driver's working folder."""
    return str(Path(path).resolve()) if path and Path(path).exists() else path


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity; not the host's count inside a container)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
