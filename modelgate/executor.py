"""Where units of work run: on this machine (``local``) or as Ray tasks on a cluster (``ray``).

A *unit* is one conversion, ground-truth run, certification cell or release recipe: a
``module:function`` call with its keyword arguments, a timeout and the OpenVINO device it opens.
An executor runs each unit in a child process through ``childproc.run_function``, on either
executor, so a result, an exception, an ``os._exit``, a SIGSEGV / SIGABRT / SIGKILL or a hang of
the body becomes the same ``ChildResult``: the same evidence, wherever it ran. On Ray the child
runs inside a Ray task; Ray only places the unit and reports a lost worker or node, which the
driver (never Ray: ``max_retries=0``) retries a bounded number of times and then records as
INFRA_TRANSIENT with every attempt's reason. A unit no live node can run is never submitted
(Ray would queue an infeasible task for ever, silently): it comes back "not run", with the reason.

Only the caller (the driver) turns records into evidence and writes files; a unit returns a
plain observation, so a lost worker can never leave a half-written file behind.

    ex = make_executor("ray")                       # or make_executor("local", workers=2)
    ex.run(units, handle=lambda rec: more_units)    # records as units finish, on this thread
    ex.close()
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import multiprocessing as mp
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from modelgate import childproc
from modelgate.contract import GateInputError
from modelgate.openvino.devices import device_resource

EXECUTORS = ("local", "ray")
UNIT_KINDS = ("ground-truth", "conversion", "cell", "recipe")
START_METHODS = ("spawn", "forkserver")
# failure class of a unit whose Ray worker or node was lost on every attempt
LOST_CLASS = "INFRA_TRANSIENT"
RAY_EXTRA = "pip install 'modelgate[cluster]'"
# Ray settings this module relies on. It passes them when it starts a local instance; a cluster
# sets them on every node (``RAY_memory_monitor_refresh_ms=0 RAY_kill_child_processes_on_worker_exit=0
# ray start ...``):
# - memory_monitor_refresh_ms=0: Ray's OOM killer judges the whole machine's memory and kills some
#   worker (with the cell in it) above 95 %, whoever used the memory; a cell's own OOM is its
#   child's SIGKILL (RESOURCE_EXHAUSTED), as on the local executor.
# - kill_child_processes_on_worker_exit=False: otherwise a dying worker kills the cell first and,
#   still alive, reports that as the cell's own SIGKILL. The cell dies with its worker anyway
#   (childproc: PR_SET_PDEATHSIG, own session).
RAY_SYSTEM_CONFIG = {"memory_monitor_refresh_ms": 0, "kill_child_processes_on_worker_exit": False}
# the local Ray instance this module starts: records are small, so is the object store
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
NODE_LABEL = "modelgate-node"  # `ray start --labels modelgate-node=<name>` names a node in the evidence


@dataclass(frozen=True)
class Unit:
    """One piece of work. ``key`` is unique within a run; ``kwargs`` and the return value must pickle.

    ``prepare`` (``module:function``) runs in the worker before the child starts, outside the
    timeout; it returns keyword arguments merged into ``kwargs`` (a cell's IR found in, or built
    into, this node's conversion cache) or raises (the unit fails with the exception's class).
    """
    key: str
    target: str
    kwargs: dict = field(default_factory=dict)
    timeout_s: float = 60.0
    kind: str = "cell"
    device: str | None = "CPU"       # the OpenVINO device the body opens (placement); None: none
    num_cpus: float = 1.0            # CPU slots the unit takes on a Ray node
    crash_class: str = "PLUGIN_CRASH"
    error_class: str = "INFERENCE_FAILED"
    start: str = "spawn"             # spawn | forkserver (a per-process server with ``preload`` imported)
    preload: tuple[str, ...] = ()
    prepare: str | None = None
    prepare_kwargs: dict = field(default_factory=dict)
    nested: bool = False             # the body starts child processes of its own (a release chain)

    def __post_init__(self):
        if self.kind not in UNIT_KINDS:
            raise ValueError(f"unit kind {self.kind!r} is not one of {UNIT_KINDS}")
        if self.start not in START_METHODS:
            raise ValueError(f"start method {self.start!r} is not one of {START_METHODS}")
        if ":" not in self.target:
            raise ValueError(f"unit target {self.target!r} is not module:function")

    def resources(self) -> dict[str, float]:
        """The Ray custom resources the unit asks for (its device's)."""
        return {device_resource(self.device): 1.0} if self.device else {}


@dataclass
class UnitRecord:
    """What came back for a unit: its child's result, or why it never started.

    ``placement`` (None when it never started): executor, node, node_label, hostname, submitted_at,
    started_at, ended_at, returned_at (ISO-8601 UTC; started/ended on the worker's clock,
    submitted/returned on the driver's), attempts, attempt_errors. ``versions``: the package
    versions of the worker that ran it (None when unknown).
    """
    unit: Unit
    result: childproc.ChildResult | None
    not_run: str | None = None
    placement: dict | None = None
    versions: dict | None = None

    @property
    def ran(self) -> bool:
        return self.result is not None


def now_iso() -> str:
    """UTC now, ISO-8601 with milliseconds and an explicit offset."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------- worker side

_contexts: dict[str, Any] = {}
_contexts_lock = threading.Lock()


def _child_context(unit: Unit):
    """The multiprocessing context of a unit, one per process (a Ray worker keeps its fork server)."""
    with _contexts_lock:
        if unit.start not in _contexts:
            ctx = mp.get_context(unit.start)
            if unit.start == "forkserver" and unit.preload:
                ctx.set_forkserver_preload(list(unit.preload))
            _contexts[unit.start] = ctx
        return _contexts[unit.start]


def stop_fork_server() -> None:
    """Stop this process's fork server, if a unit started one, and wait until it is gone: left alone it
    would outlive the command by the moment it takes to notice its requester has exited."""
    with _contexts_lock:
        if _contexts.pop("forkserver", None) is None:
            return
        from multiprocessing import forkserver
        stop = getattr(forkserver._forkserver, "_stop", None)
        if stop is not None:
            with contextlib.suppress(OSError, ChildProcessError):
                stop()


@contextlib.contextmanager
def _main_hidden(active: bool):
    """A spawned child re-imports its parent's ``__main__`` by path; in a Ray worker that is Ray's
    ``default_worker.py``, which imports all of Ray (seconds per cell under load). Hide the path
    while the child starts: unit targets are imported by module name, never from ``__main__``."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not active or path is None or getattr(main, "__spec__", None) is not None:
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def _call(target: str, kwargs: dict) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(**kwargs)


def _where(executor: str) -> dict:
    host = socket.gethostname() or "unknown"
    if executor == "ray":
        import ray

        ctx = ray.get_runtime_context()
        node = ctx.get_node_id()
        label = (ctx.get_node_labels() or {}).get(NODE_LABEL) or f"{host}:{node[:8]}"
        return {"executor": "ray", "node": node, "node_label": label, "hostname": host}
    return {"executor": "local", "node": f"local:{host}", "node_label": host, "hostname": host}


def run_unit(unit: Unit, executor: str) -> dict:
    """Run one unit here: prepare, then its child process with its timeout. Never raises.

    Returns {"result": ChildResult, "placement": {...}, "versions": {...}} (the driver completes
    the placement with its own submitted/returned times and the attempt count).
    """
    from modelgate.contract import versions

    started = now_iso()
    place = _where(executor)
    on_ray = executor == "ray"
    kwargs = dict(unit.kwargs)
    result = None
    if unit.prepare:
        try:
            kwargs.update(_call(unit.prepare, dict(unit.prepare_kwargs)) or {})
        except Exception as exc:  # the unit cannot start on this node: a failed result, not a crash of the worker
            cls = getattr(exc, "failure_class", None) or unit.error_class
            result = childproc.ChildResult(False, failure_class=cls, detail=f"preparing {unit.key} on "
                                           f"{place['node_label']} failed: {type(exc).__name__}: {exc}"[:2000])
    if result is None:
        ctx = _child_context(unit)
        with _main_hidden(on_ray):
            result = childproc.run_function(unit.target, kwargs, timeout=unit.timeout_s, crash_class=unit.crash_class,
                                            error_class=unit.error_class, context=ctx, new_session=on_ray,
                                            daemon=not unit.nested)
    place.update(started_at=started, ended_at=now_iso())
    return {"result": result, "placement": place, "versions": versions()}


def warm_unit(start: str, preload: tuple[str, ...], hold_s: float = 0.0) -> str:
    """Start this process's fork server (and its preloaded imports) ahead of the first timed unit;
    ``hold_s`` keeps the task busy so that sibling warm-ups land on other workers."""
    unit = Unit(key="warm", target="os:getpid", start=start, preload=preload, timeout_s=900.0)
    # the server preloads in the background; the first child it forks waits for that to finish
    with _main_hidden(True):
        childproc.run_function(unit.target, {}, timeout=unit.timeout_s, context=_child_context(unit))
    time.sleep(hold_s)
    return socket.gethostname()


# --------------------------------------------------------------------------- executors

Handle = Callable[[UnitRecord], Iterable[Unit] | None]
Skip = Callable[[Unit], str | None]


class Executor:
    """Runs units and hands each record to ``handle`` on the calling thread as it comes back.

    ``handle(record)`` may return more units (a model's cells once its ground truth and conversions
    are back); they queue behind the others. ``skip(unit)``, asked just before a unit would start,
    returns why it must not run (a failure policy that stopped the run) or None. Every unit yields
    exactly one record.
    """

    name = "?"
    unit_threads = 1  # inference threads a unit may use (and CPU slots it asks for on Ray)

    def run(self, units: Iterable[Unit], *, handle: Handle, skip: Skip | None = None) -> None:
        raise NotImplementedError

    def unplaceable(self, unit: Unit) -> str | None:
        """Why no worker can ever run ``unit`` (None when one can)."""
        return None

    def describe(self) -> dict:
        """What the evidence header says about the executor."""
        return {"name": self.name}

    def warm(self, start: str, preload: tuple[str, ...] = ()) -> None:
        """Start the fork server(s) before the clock starts (benchmarks)."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _deliver(rec: UnitRecord, handle: Handle, pending: deque) -> None:
    pending.extend(handle(rec) or ())


class LocalExecutor(Executor):
    """This machine: ``workers`` threads, each running one unit at a time in its own child process."""

    name = "local"

    def __init__(self, workers: int = 2, *, devices: list[str] | None = None):
        if not isinstance(workers, int) or workers < 1:
            raise GateInputError("USER_CONFIG_ERROR", f"workers must be a positive integer, got {workers!r}")
        self.workers = workers
        self.unit_threads = max(1, (os.cpu_count() or 1) // workers)
        self._devices = devices  # None: ask OpenVINO when a unit needs a device
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="unit")

    def devices(self) -> list[str]:
        if self._devices is None:
            from modelgate.openvino.devices import available_devices

            self._devices = available_devices()
        return self._devices

    def unplaceable(self, unit: Unit) -> str | None:
        if not unit.device:
            return None
        family = unit.device.split(".")[0]
        have = self.devices()
        return None if family in have else \
            f"device {family} not present on this host (available: {', '.join(have) or 'none'})"

    def describe(self) -> dict:
        return {"name": self.name, "workers": self.workers}

    def warm(self, start: str, preload: tuple[str, ...] = ()) -> None:
        warm_unit(start, preload)

    def run(self, units, *, handle, skip=None):
        pending = deque(units)
        running: dict[Future, tuple[Unit, str]] = {}
        while pending or running:
            while pending and len(running) < self.workers:
                unit = pending.popleft()
                why = (skip(unit) if skip else None) or self.unplaceable(unit)
                if why:
                    _deliver(UnitRecord(unit, None, not_run=why), handle, pending)
                    continue
                running[self._pool.submit(run_unit, unit, "local")] = (unit, now_iso())
            if not running:
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                unit, submitted = running.pop(fut)
                out = fut.result()
                place = dict(out["placement"], submitted_at=submitted, returned_at=now_iso(), attempts=1,
                             attempt_errors=[])
                _deliver(UnitRecord(unit, out["result"], placement=place, versions=out["versions"]), handle, pending)

    def close(self):
        self._pool.shutdown(wait=True)
        stop_fork_server()


def import_ray():
    """The ``ray`` module, or a USER_CONFIG_ERROR (exit 2) that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise GateInputError("USER_CONFIG_ERROR", f"--executor ray needs Ray, which is not installed ({exc}); "
                             f"{RAY_EXTRA}") from exc
    return ray


def _infra_errors(ray) -> tuple[type[BaseException], ...]:
    """Ray errors that mean "the worker process or its node went away", not "the unit failed"."""
    names = ("WorkerCrashedError", "NodeDiedError", "ObjectLostError", "OwnerDiedError", "LocalRayletDiedError",
             "ObjectFetchTimedOutError", "ReferenceCountingAssertionError", "ActorUnavailableError",
             "OutOfMemoryError")
    return tuple(getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


@dataclass
class _Attempt:
    unit: Unit
    number: int
    errors: list[str]
    submitted: str


class RayExecutor(Executor):
    """Each unit is a Ray task that runs the unit in a child process (the same records as ``local``).

    ``address`` None starts a local Ray instance (its CPUs and this host's OpenVINO devices as
    resources, the settings in RAY_SYSTEM_CONFIG, a small object store, no dashboard) and shuts it
    down on ``close``; an address joins that cluster. ``retries``: how many more times a unit is
    submitted when its worker or node is lost. ``window``: units in flight (default: the cluster's
    CPU slots / ``cpus_per_unit``), so a failure policy that stops a model leaves the rest of its
    cells unsubmitted, as locally. ``strategy``: Ray's scheduling strategy (DEFAULT packs, SPREAD
    spreads).
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, retries: int = 2, window: int | None = None,
                 cpus_per_unit: int = 1, strategy: str = "DEFAULT", init_kwargs: dict | None = None,
                 recheck_s: float = 2.0, poll_s: float = 0.5):
        ray = import_ray()
        if not isinstance(retries, int) or retries < 0:
            raise GateInputError("USER_CONFIG_ERROR", f"retries must be an integer >= 0, got {retries!r}")
        if not isinstance(cpus_per_unit, int) or cpus_per_unit < 1:
            raise GateInputError("USER_CONFIG_ERROR",
                                 f"cpus per unit must be a positive integer, got {cpus_per_unit!r}")
        self._ray = ray
        self.address = address
        self._owns = False
        if not ray.is_initialized():
            ray.init(**self._init_kwargs(address, init_kwargs or {}))
            self._owns = True
        self.retries, self.strategy = retries, strategy
        self.recheck_s, self.poll_s = recheck_s, poll_s
        self.unit_threads = cpus_per_unit
        slots = int(ray.cluster_resources().get("CPU", 1) // cpus_per_unit)
        self.window = window or max(1, slots)
        self._remote = ray.remote(max_retries=0, retry_exceptions=False)(run_unit)
        self._warm = ray.remote(max_retries=0)(warm_unit)

    @staticmethod
    def _init_kwargs(address: str | None, extra: dict) -> dict:
        kw: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        if address:
            kw["address"] = address  # an existing cluster keeps its own settings (see RAY_SYSTEM_CONFIG)
        else:
            from modelgate.openvino.devices import node_devices, openvino_resources

            # "local": a new instance, never whatever cluster the environment or /tmp/ray points at
            num_cpus = extra.get("num_cpus") or os.cpu_count() or 1
            kw.update(address="local", num_cpus=num_cpus, include_dashboard=False,
                      object_store_memory=LOCAL_OBJECT_STORE_BYTES, _system_config=dict(RAY_SYSTEM_CONFIG))
            if "resources" not in extra:
                kw["resources"] = openvino_resources(num_cpus, node_devices())
        kw.update(extra)
        return kw

    # ------------------------------------------------------------------ placement
    def _nodes(self) -> list[dict]:
        return [n for n in self._ray.nodes() if n.get("Alive")]

    def _need(self, unit: Unit) -> dict[str, float]:
        return dict(unit.resources(), CPU=float(unit.num_cpus))

    def unplaceable(self, unit: Unit, nodes: list[dict] | None = None) -> str | None:
        need = self._need(unit)
        for node in self._nodes() if nodes is None else nodes:
            have = node.get("Resources") or {}
            if all(have.get(k, 0.0) >= v for k, v in need.items()):
                return None
        return f"no live Ray node advertises {need}"

    def describe(self) -> dict:
        nodes = [{"node": n["NodeID"], "label": (n.get("Labels") or {}).get(NODE_LABEL) or n.get("NodeManagerHostname"),
                  "resources": {k: v for k, v in (n.get("Resources") or {}).items()
                                if k == "CPU" or k.startswith("openvino_")}} for n in self._nodes()]
        return {"name": self.name, "address": self.address or "local", "nodes": nodes}

    def warm(self, start: str, preload: tuple[str, ...] = ()) -> None:
        # one warm-up per slot, each held a moment so that they land on different workers
        refs = [self._warm.options(num_cpus=1).remote(start, preload, 1.0) for _ in range(self.window)]
        self._ray.get(refs)

    def _launch(self, unit: Unit):
        return self._remote.options(num_cpus=unit.num_cpus, resources=unit.resources(), name=unit.key[:200],
                                    scheduling_strategy=self.strategy).remote(unit, "ray")

    # ------------------------------------------------------------------ the loop
    def run(self, units, *, handle, skip=None):
        ray = self._ray
        infra = _infra_errors(ray)
        pending = deque(units)
        running: dict[Any, _Attempt] = {}
        nodes, checked = self._nodes(), time.monotonic()
        while pending or running:
            if running and time.monotonic() - checked >= self.recheck_s:
                nodes, checked = self._nodes(), time.monotonic()
                self._give_up_infeasible(running, nodes, handle, pending)
            while pending and len(running) < self.window:
                unit = pending.popleft()
                why = (skip(unit) if skip else None) or self.unplaceable(unit, nodes)
                if why:
                    _deliver(UnitRecord(unit, None, not_run=why), handle, pending)
                    continue
                running[self._launch(unit)] = _Attempt(unit, 1, [], now_iso())
            if not running:
                continue
            done, _ = ray.wait(list(running), num_returns=1, timeout=self.poll_s)
            for ref in done:
                att = running.pop(ref)
                try:
                    out = ray.get(ref)
                except infra as exc:
                    errors = [*att.errors, f"attempt {att.number}: {type(exc).__name__}: {_first_line(exc)}"]
                    nodes, checked = self._nodes(), time.monotonic()
                    why = self.unplaceable(att.unit, nodes)
                    if att.number <= self.retries and not why:
                        running[self._launch(att.unit)] = _Attempt(att.unit, att.number + 1, errors, att.submitted)
                        continue
                    reason = errors + ([f"not retried: {why}"] if why else [])
                    _deliver(self._lost(att.unit, att.number, reason, att.submitted), handle, pending)
                    continue
                except ray.exceptions.TaskCancelledError as exc:  # cancelled from outside this driver: not retried
                    errors = [*att.errors, f"attempt {att.number}: {type(exc).__name__}: {_first_line(exc)}"]
                    _deliver(self._lost(att.unit, att.number, errors, att.submitted), handle, pending)
                    continue
                except ray.exceptions.RayError as exc:  # run_unit itself failed: a defect, not a verdict
                    res = childproc.ChildResult(False, failure_class="UNKNOWN", detail="executor error on Ray: "
                                                f"{type(exc).__name__}: {_first_line(exc)}")
                    place = {"executor": "ray", "node": None, "node_label": None, "hostname": None,
                             "submitted_at": att.submitted, "started_at": att.submitted, "ended_at": now_iso(),
                             "returned_at": now_iso(), "attempts": att.number, "attempt_errors": att.errors}
                    _deliver(UnitRecord(att.unit, res, placement=place), handle, pending)
                    continue
                place = dict(out["placement"], submitted_at=att.submitted, returned_at=now_iso(),
                             attempts=att.number, attempt_errors=att.errors)
                _deliver(UnitRecord(att.unit, out["result"], placement=place, versions=out["versions"]),
                         handle, pending)

    def _give_up_infeasible(self, running: dict, nodes: list[dict], handle: Handle, pending: deque) -> None:
        """A queued unit whose every capable node has died would wait for ever: cancel it and say why.
        Finished refs are left for the main loop (their error or result is the record)."""
        ready, _ = self._ray.wait(list(running), num_returns=len(running), timeout=0)
        for ref in [r for r in running if r not in set(ready)]:
            att = running[ref]
            why = self.unplaceable(att.unit, nodes)
            if not why:
                continue
            self._ray.cancel(ref, force=True)
            del running[ref]
            if att.errors:  # it ran and was lost before: an infrastructure crash
                rec = self._lost(att.unit, att.number - 1, [*att.errors, f"not retried: {why}"], att.submitted)
            else:  # never started anywhere
                rec = UnitRecord(att.unit, None, not_run=f"{why} (its node was lost before it started)")
            _deliver(rec, handle, pending)

    def _lost(self, unit: Unit, attempts: int, errors: list[str], submitted: str) -> UnitRecord:
        detail = (f"Ray worker or node lost ({attempts} attempt{'s' if attempts != 1 else ''}): "
                  + "; ".join(errors))[:2000]
        res = childproc.ChildResult(False, failure_class=LOST_CLASS, detail=detail)
        ended = now_iso()
        place = {"executor": "ray", "node": None, "node_label": None, "hostname": None, "submitted_at": submitted,
                 "started_at": submitted, "ended_at": ended, "returned_at": ended, "attempts": attempts,
                 "attempt_errors": errors}
        return UnitRecord(unit, res, placement=place)

    def close(self):
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns = False


def make_executor(name: str, *, workers: int = 2, address: str | None = None, retries: int = 2,
                  cpus_per_unit: int = 1, **ray_options: Any) -> Executor:
    """``local`` (``workers`` child processes at a time) or ``ray`` (a local instance, or the cluster
    at ``address``). An unknown name, or ``ray`` without Ray installed, is a USER_CONFIG_ERROR (exit 2)."""
    if name == "local":
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(address, retries=retries, cpus_per_unit=cpus_per_unit, **ray_options)
    raise GateInputError("USER_CONFIG_ERROR", f"unknown executor {name!r}; one of {EXECUTORS}")
