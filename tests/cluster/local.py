"""The local cluster as the tests see it: paths, kubectl, API clients, service-account credentials.

Everything here reads what deploy/local-cluster/up.sh wrote; the cluster itself is started by conftest.py.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client import models as k8s

REPO = Path(__file__).resolve().parents[2]
NODES = ("gpu-node-a", "gpu-node-b")
NAMESPACE = "mlperf"                         # deploy/namespace.yaml, KubernetesSettings' default
KUBELET_PORTS = {"gpu-node-a": 10250, "gpu-node-b": 10260}


@dataclass(frozen=True)
class LocalCluster:
    state_dir: Path
    cache_dir: Path

    @classmethod
    def from_env(cls) -> "LocalCluster":
        return cls(state_dir=Path(os.environ.get("MLPERF_CLUSTER_DIR") or REPO / ".cache/cluster"),
                   cache_dir=Path(os.environ.get("MLPERF_CLUSTER_CACHE") or "/var/cache/mlperf-k8s"))

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state_dir / "etc/admin.kubeconfig"

    @property
    def volume_dirs(self) -> dict[str, Path]:
        return {name: self.state_dir / "volumes" / name for name in ("model", "dataset", "artifacts")}

    def kubectl(self, *args: str, kubeconfig: Path | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess:
        """The cluster's own kubectl (v1.20.2, built with it), as admin unless another kubeconfig is given."""
        done = subprocess.run([str(self.cache_dir / "bin/kubectl"),
                               f"--kubeconfig={kubeconfig or self.admin_kubeconfig}", *args],
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done

    def api(self, kubeconfig: Path | None = None) -> k8s_client.CoreV1Api:
        return k8s_client.CoreV1Api(k8s_config.new_client_from_config(str(kubeconfig or self.admin_kubeconfig)))

    def service_account_kubeconfig(self, account: str, path: Path, namespace: str = NAMESPACE) -> Path:
        """A kubeconfig holding a token of `account` (TokenRequest API, what `kubectl create token` does)."""
        request = k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[],
                                                                                expiration_seconds=3600))
        token = self.api().create_namespaced_service_account_token(account, namespace, request).status.token
        admin = self.admin_kubeconfig.read_text()
        server = next(line.split('server: "')[1].split('"')[0] for line in admin.splitlines() if "server:" in line)
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": account,
            "clusters": [{"name": "local", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [{"name": account, "context": {"cluster": "local", "user": account, "namespace": namespace}}],
        }))
        path.chmod(0o600)
        return path

    def objects_labelled(self, selector: str, namespace: str = NAMESPACE) -> list[str]:
        """What `kubectl get all,pvc -l SELECTOR` lists: the test's proof that a run left nothing behind."""
        out = self.kubectl("-n", namespace, "get", "all,pvc", "-l", selector, "-o", "name").stdout
        return out.split()
