"""An emulated Kubernetes cluster for tests: kmock's in-memory API server plus a node agent of our own.

No real cluster (nor any API server binary) can run on the test machines, so the Kubernetes runner is exercised
end to end against this instead: the real KubernetesPodOperator and the real `kubernetes` client talk HTTP to
kmock's `KubernetesEmulator`, and the node agent plays kubelet + scheduler:

* schedules a pod to a node only if its required node affinity names a known node (otherwise it stays Pending,
  Unschedulable, as on a real cluster) and every PVC it mounts exists;
* runs the pod's container as a LOCAL PROCESS: the image's entrypoint is looked up in `images`
  (e.g. the SUT image -> `python tests/kubernetes/fake_sut.py`), PVC mount paths in the arguments and environment
  are rewritten to local directories (the "volumes"), `--port <containerPort>` to a free local port;
* reports Pending -> Running -> Succeeded/Failed with container statuses, the termination message
  (FallbackToLogsOnError: the log tail when the container failed), and Ready once an httpGet readiness probe answers;
* serves the container's log (`/log`, with `follow` and RFC 3339 `timestamps`) and kills the process when the pod is
  deleted.

What kmock 0.8 needed on top (see /work/shared/FACTS.md): the bundled resource list, `watch=True` parsing (the Python
client sends `True`), the namespace from the URL on create, labelSelector filtering on lists, an initial pod status,
and a text/plain log endpoint.
"""
from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import attrs
import kmock
from kmock._internal import enums, rendering

HERE = Path(__file__).resolve().parent
FAKE_SUT = [sys.executable, str(HERE / "fake_sut.py")]
PODS = kmock.resource("", "v1", "pods")


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _match_selector(labels: dict[str, str], selector: str) -> bool:
    """Equality-based label selectors (`a=b`, `a==b`, `a!=b`, `a`, `!a`) and `a in (x,y)` / `a notin (x,y)`."""
    terms, depth, cur = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    for term in (t.strip() for t in terms):
        if not term:
            continue
        setwise = re.match(r"^(\S+)\s+(in|notin)\s+\((.*)\)$", term)
        if setwise:
            key, op, values = setwise.groups()
            if (labels.get(key) in {v.strip() for v in values.split(",")}) != (op == "in"):
                return False
        elif "!=" in term:
            key, _, value = term.partition("!=")
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, _, value = term.replace("==", "=").partition("=")
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class _Container:
    """One running pod's local process and its log."""

    uid: str
    namespace: str
    name: str
    node: str
    process: asyncio.subprocess.Process | None = None
    lines: list[tuple[str, str]] = field(default_factory=list)   # (RFC 3339 timestamp, line)
    finished: bool = False
    exit_code: int | None = None
    ports: dict[int, int] = field(default_factory=dict)          # containerPort -> local port
    tasks: list[asyncio.Task] = field(default_factory=list)


class ClusterEmulator(kmock.KubernetesEmulator):
    """kmock's KubernetesEmulator with the fixes listed in the module docstring and a node agent."""

    def configure(self, *, nodes: dict[str, dict[str, str]], images: dict[str, list[str]],
                  volumes: dict[str, Path], node_label_key: str = "kubernetes.io/hostname") -> None:
        self.nodes = nodes                    # node name -> node labels
        self.images = images                  # image -> entrypoint argv
        self.volumes = volumes                # PVC claim name -> local directory
        self.node_label_key = node_label_key
        self.containers: dict[str, _Container] = {}
        self.created: list[tuple[str, str, str]] = []   # (plural, namespace, name) of every create request
        self.max_live_pods: dict[str, int] = {}           # label "task_id" value -> most pods alive at once
        self.resources.load_bundled()

    # ---------------------------------------------------------------- API server fixes
    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if request.resource is not None:
            if request.method == enums.method.GET and str(request.params.get("watch", "")).lower() in ("true", "1"):
                request = attrs.evolve(request, action=enums.action.WATCH)
            if request.resource == PODS and request.subresource == "log":
                return await self._serve_log(request)
            if request.action == enums.action.CREATE and isinstance(request.data, dict):
                self._on_create(request)
            if request.action == enums.action.LIST and request.params.get("labelSelector"):
                return aiohttp.web.json_response(self._list_selected(request))
        return await super()._handle(request)

    def _on_create(self, request: rendering.Request) -> None:
        meta = request.data.setdefault("metadata", {})
        meta.setdefault("namespace", request.namespace)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        meta.setdefault("resourceVersion", "1")
        meta.setdefault("labels", {})
        if request.resource == PODS:
            request.data["status"] = {"phase": "Pending", "conditions": []}
        self.created.append((request.resource.plural, meta["namespace"], meta.get("name")))

    def _live(self, resource: kmock.resource, namespace: str | None = None) -> list[dict[str, Any]]:
        return [obj.raw for (res, ns, _), obj in list(self.objects.items())
                if res == resource and not obj.deleted and (namespace is None or ns == namespace)]

    def _list_selected(self, request: rendering.Request) -> dict[str, Any]:
        selector = request.params["labelSelector"]
        items = [raw for raw in self._live(request.resource, request.namespace)
                 if _match_selector(raw.get("metadata", {}).get("labels") or {}, selector)]
        return {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}

    async def _serve_log(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        key = (PODS, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            raise kmock.KubernetesObjectNotFoundError()
        uid = self.objects[key].raw["metadata"]["uid"]
        c = self.containers.get(uid)
        if c is None:
            raise kmock.KubernetesError(status=400, reason="BadRequest",
                                        message=f'container in pod "{request.name}" is waiting to start')
        follow = str(request.params.get("follow", "")).lower() in ("true", "1")
        timestamps = str(request.params.get("timestamps", "")).lower() in ("true", "1")
        tail = request.params.get("tailLines")
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request._raw_request)
        sent = max(0, len(c.lines) - int(tail)) if tail else 0
        while True:
            while sent < len(c.lines):
                ts, line = c.lines[sent]
                await response.write(((f"{ts} " if timestamps else "") + line + "\n").encode())
                sent += 1
            if not follow or (c.finished and sent >= len(c.lines)):
                break
            await asyncio.sleep(0.05)
        await response.write_eof()
        return response

    # ---------------------------------------------------------------- node agent
    async def run_agent(self) -> None:
        while True:
            try:
                self._agent_step()
            except Exception as exc:  # keep the agent alive; the failure shows up as a stuck pod in the test
                print(f"node agent error: {exc!r}", file=sys.stderr)
            await asyncio.sleep(0.05)

    def _patch_pod(self, namespace: str, name: str, changes: dict[str, Any]) -> None:
        key = (PODS, namespace, name)
        if key in self.objects and not self.objects[key].deleted:
            self.objects[key].patch(changes)

    def _agent_step(self) -> None:
        live_uids = set()
        counts: dict[str, int] = {}
        for pod in self._live(PODS):
            meta, spec = pod["metadata"], pod.get("spec", {})
            uid = meta["uid"]
            live_uids.add(uid)
            task = (meta.get("labels") or {}).get("task_id")
            if task:
                counts[task] = counts.get(task, 0) + 1
            if uid not in self.containers and pod.get("status", {}).get("phase") == "Pending":
                self._schedule(pod)
            elif uid in self.containers:
                self._update_status(pod, self.containers[uid])
        for task, n in counts.items():
            self.max_live_pods[task] = max(self.max_live_pods.get(task, 0), n)
        for uid, c in list(self.containers.items()):
            if uid not in live_uids and c.process is not None and c.process.returncode is None:
                _kill(c.process)   # pod deleted: the kubelet stops its containers

    def _required_nodes(self, spec: dict[str, Any]) -> list[str] | None:
        terms = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                 .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms")
        if not terms:
            return None
        nodes = []
        for node, labels in self.nodes.items():
            for term in terms:
                if all(_expr_ok(labels, e) for e in term.get("matchExpressions") or []):
                    nodes.append(node)
                    break
        return nodes

    def _schedule(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        ns, name = meta["namespace"], meta["name"]
        candidates = self._required_nodes(spec)
        candidates = list(self.nodes) if candidates is None else candidates
        missing = [v["persistentVolumeClaim"]["claimName"] for v in spec.get("volumes") or []
                   if v.get("persistentVolumeClaim") and v["persistentVolumeClaim"]["claimName"] not in self.volumes]
        if not candidates or missing:
            message = (f'persistentvolumeclaim "{missing[0]}" not found' if missing else
                       f"0/{len(self.nodes)} nodes are available: {len(self.nodes)} node(s) didn't match "
                       "Pod's node affinity/selector.")
            conditions = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                           "message": message}]
            if pod["status"].get("conditions") != conditions:
                self._patch_pod(ns, name, {"status": {"conditions": conditions}})
            return
        node = candidates[0]
        container = spec["containers"][0]
        c = _Container(uid=meta["uid"], namespace=ns, name=name, node=node)
        self.containers[c.uid] = c
        image = container["image"]
        if image not in self.images and not container.get("command"):
            self._patch_pod(ns, name, {"spec": {"nodeName": node}, "status": {
                "conditions": [{"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [{"name": container["name"], "image": image, "imageID": "", "ready": False,
                                       "restartCount": 0, "state": {"waiting": {
                                           "reason": "ErrImagePull", "message": f"emulator knows no image {image}"}}}],
            }})
            return
        self._patch_pod(ns, name, {"spec": {"nodeName": node}, "status": {
            "phase": "Pending", "hostIP": "127.0.0.1",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": _now()}],
        }})
        c.tasks.append(asyncio.get_running_loop().create_task(self._start(pod, c)))

    async def _start(self, pod: dict[str, Any], c: _Container) -> None:
        spec = pod["spec"]
        container = spec["containers"][0]
        mounts: dict[str, str] = {}
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        for m in container.get("volumeMounts") or []:
            v = volumes.get(m["name"], {})
            if v.get("persistentVolumeClaim"):
                mounts[m["mountPath"]] = str(self.volumes[v["persistentVolumeClaim"]["claimName"]])
            elif "emptyDir" in v:
                mounts[m["mountPath"]] = tempfile.mkdtemp(prefix=f"emptydir-{m['name']}-")

        def local(text: str) -> str:
            for mount in sorted(mounts, key=len, reverse=True):
                if text == mount or text.startswith(mount.rstrip("/") + "/"):
                    return mounts[mount] + text[len(mount):]
            return text

        argv = list(container.get("command") or self.images[container["image"]])
        args = [local(a) for a in container.get("args") or []]
        for port in container.get("ports") or []:
            local_port = _free_port()
            c.ports[port["containerPort"]] = local_port
            if port.get("name"):
                c.ports[port["name"]] = local_port
            args = [str(local_port) if a == str(port["containerPort"]) and i and args[i - 1] == "--port" else a
                    for i, a in enumerate(args)]
        # A container sees only its own environment, plus what a local process needs to start (and vLLM's CPU
        # KV-cache size, which on a GPU node the image would not need).
        env = {k: v for k, v in os.environ.items()
               if k in ("PATH", "HOME", "LANG", "TMPDIR", "VLLM_CPU_KVCACHE_SPACE", "NLTK_DATA")}
        for e in container.get("env") or []:
            if "value" in e:
                env[e["name"]] = local(e["value"])
            elif (e.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName":
                env[e["name"]] = c.node
        c.process = await asyncio.create_subprocess_exec(
            *argv, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True)
        started = _now()
        self._patch_pod(c.namespace, c.name, {"status": {
            "phase": "Running", "startTime": started, "podIP": "127.0.0.1",
            "containerStatuses": [{"name": container["name"], "image": container["image"], "imageID": "",
                                   "ready": not container.get("readinessProbe"), "restartCount": 0, "started": True,
                                   "state": {"running": {"startedAt": started}}}],
        }})
        if container.get("readinessProbe", {}).get("httpGet"):
            c.tasks.append(asyncio.get_running_loop().create_task(
                self._probe(c, container["readinessProbe"]["httpGet"], container["name"])))
        else:
            self._set_ready(c, True)
        async for raw in c.process.stdout:
            c.lines.append((datetime.datetime.now(tz=datetime.UTC).isoformat().replace("+00:00", "Z"),
                            raw.decode(errors="replace").rstrip("\n")))
        c.exit_code = await c.process.wait()
        c.finished = True

    def _set_ready(self, c: _Container, ready: bool) -> None:
        key = (PODS, c.namespace, c.name)
        if key not in self.objects or self.objects[key].deleted:
            return
        status = self.objects[key].raw.get("status", {})
        conditions = [x for x in status.get("conditions", []) if x["type"] not in ("Ready", "ContainersReady")]
        flag = "True" if ready else "False"
        conditions += [{"type": "Ready", "status": flag}, {"type": "ContainersReady", "status": flag}]
        statuses = [dict(cs, ready=ready) for cs in status.get("containerStatuses", [])]
        self._patch_pod(c.namespace, c.name, {"status": {"conditions": conditions, "containerStatuses": statuses}})

    async def _probe(self, c: _Container, http_get: dict[str, Any], container_name: str) -> None:
        port = c.ports.get(http_get["port"]) or c.ports.get(int(http_get["port"]) if str(http_get["port"]).isdigit()
                                                            else -1)
        url = f"http://127.0.0.1:{port}{http_get.get('path', '/')}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while not c.finished:
                try:
                    async with session.get(url) as resp:
                        ok = resp.status < 400
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                    ok = False
                self._set_ready(c, ok)
                if ok:
                    return
                await asyncio.sleep(0.1)

    def _update_status(self, pod: dict[str, Any], c: _Container) -> None:
        if not c.finished or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return
        container = pod["spec"]["containers"][0]
        code = c.exit_code if c.exit_code is not None else -1
        terminated: dict[str, Any] = {"exitCode": code if code >= 0 else 128 - code,
                                      "reason": "Completed" if code == 0 else "Error",
                                      "startedAt": pod["status"].get("startTime"), "finishedAt": _now()}
        if code != 0 and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            # kubelet: the last 80 lines / 2048 bytes of the log become the termination message.
            tail = "\n".join(line for _, line in c.lines[-80:])
            terminated["message"] = tail[-2048:]
        phase = "Succeeded" if code == 0 else "Failed"
        statuses = [{"name": container["name"], "image": container["image"], "imageID": "", "ready": False,
                     "restartCount": 0, "started": False, "state": {"terminated": terminated}}]
        conditions = [x for x in pod["status"].get("conditions", []) if x["type"] not in ("Ready", "ContainersReady")]
        conditions += [{"type": "Ready", "status": "False", "reason": "PodCompleted"},
                       {"type": "ContainersReady", "status": "False", "reason": "PodCompleted"}]
        self._patch_pod(c.namespace, c.name, {"status": {"phase": phase, "containerStatuses": statuses,
                                                         "conditions": conditions}})

    async def shutdown(self) -> None:
        for c in self.containers.values():
            if c.process is not None and c.process.returncode is None:
                _kill(c.process)
                try:
                    await asyncio.wait_for(c.process.wait(), 5)
                except asyncio.TimeoutError:
                    pass
            for t in c.tasks:
                t.cancel()


def _expr_ok(labels: dict[str, str], expr: dict[str, Any]) -> bool:
    op, key, values = expr["operator"], expr["key"], expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False


def _kill(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmulatedCluster:
    """Runs a `ClusterEmulator` on its own event loop in a background thread (the operator's client is synchronous).

    `kubeconfig` is a file pointing at the emulator; `connection_uri` is what AIRFLOW_CONN_KUBERNETES_DEFAULT takes.
    """

    def __init__(self, *, workdir: Path, nodes: list[str], images: dict[str, list[str]], volumes: dict[str, Path],
                 node_label_key: str = "kubernetes.io/hostname") -> None:
        self.workdir = workdir
        self.emulator = ClusterEmulator()
        self.emulator.configure(nodes={n: {node_label_key: n, "nvidia.com/gpu.present": "true"} for n in nodes},
                                images=images, volumes=volumes, node_label_key=node_label_key)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="k8s-emulator", daemon=True)
        self._stop: asyncio.Event | None = None
        self._serving: asyncio.Future | None = None
        self.url = ""

    def __enter__(self) -> "EmulatedCluster":
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self.url = started.result(timeout=30)
        self.kubeconfig = self.workdir / "kubeconfig.yaml"
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": {"token": "not-a-secret"}}],
            "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "emulator"}}],
        }))
        return self

    @property
    def connection_uri(self) -> str:
        return json.dumps({"conn_type": "kubernetes", "extra": {"kube_config_path": str(self.kubeconfig)}})

    async def _start(self) -> str:
        self._stop = asyncio.Event()
        ready: asyncio.Future = self._loop.create_future()
        self._serving = self._loop.create_task(self._serve(ready))
        return await ready

    async def _serve(self, ready: asyncio.Future) -> None:
        async with self.emulator as emu, kmock.Server(emu, host="127.0.0.1") as server:
            agent = asyncio.get_running_loop().create_task(emu.run_agent())
            ready.set_result(str(server.url).rstrip("/"))
            await self._stop.wait()
            agent.cancel()
            await emu.shutdown()

    def __exit__(self, *exc: Any) -> None:
        async def stop() -> None:
            self._stop.set()
            await self._serving
        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def call(self, fn, *args: Any) -> Any:
        """Run `fn(*args)` on the emulator's loop (safe access to its in-memory state from a test)."""
        async def wrapper() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout=30)

    def live(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.call(lambda: self.emulator._live(kmock.resource("", "v1", plural), namespace))
