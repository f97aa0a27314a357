"""`make cluster-down` (deploy/local-cluster/down.sh) leaves nothing running or mounted. Runs last in this folder
(file order); the session fixture's own stop afterwards is then a no-op."""
from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.cluster.local import NODES, REPO, LocalCluster

pytestmark = pytest.mark.slow


def _processes_mentioning(*paths: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(str(p) in cmdline for p in paths):
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_cluster_down_leaves_nothing_running_or_mounted(local_cluster: LocalCluster) -> None:
    namespaces = [(local_cluster.state_dir / f"pids/mntns-{n}").read_text().strip() for n in NODES]
    ip_forward_before = (local_cluster.state_dir / "etc/ip_forward.before").read_text().strip()
    down = subprocess.run([str(REPO / "deploy/local-cluster/down.sh")], capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr

    assert _processes_mentioning(local_cluster.state_dir, local_cluster.cache_dir) == []
    in_node_namespaces = [p.name for p in Path("/proc").iterdir() if p.name.isdigit()
                          and _readlink(p / "ns/mnt") in namespaces]
    assert in_node_namespaces == []                  # no container, shim or containerd of either node
    mounts = Path("/proc/mounts").read_text()
    assert str(local_cluster.state_dir) not in mounts
    assert [p for p in (2379, 6443, 10249, 10250, 10256, 10260) if _listening(p)] == []
    # kube-proxy's rules are gone from every table and IP forwarding is what it was before up.sh.
    for table in ("nat", "filter"):
        rules = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True).stdout
        assert "KUBE-" not in rules, rules
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == ip_forward_before
    assert "10.89.0.10" not in subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout  # DNS
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "mlperfbr" not in links
    cgroups = [line.split()[1] for line in mounts.splitlines() if line.split()[2] == "cgroup"]
    assert [c for c in cgroups for n in NODES if Path(c, f"mlperf-{n}").exists()] == []


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""
