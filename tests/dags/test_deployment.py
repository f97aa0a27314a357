"""include/deployment.py: the one place the environment is read, and the kubernetes runner's settings in it."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from include import deployment

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for folder in ("include", "plugins", "dags") for p in (REPO / folder).rglob("*.py"))
ONE_PLACE = Path(deployment.__file__).resolve()
ENVIRONMENT = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
MUTATORS = {"update", "pop", "popitem", "setdefault", "clear", "__setitem__", "__delitem__"}


def _environment_uses(path: Path) -> list[tuple[int, str]]:
    """(line, kind) of each use of the process environment: `copy` (dict(os.environ), a child process's
    environment), `write`, or `read`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    parent = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os" and {a.name for a in node.names} & ENVIRONMENT:
            uses.append((node.lineno, "read"))
        if not (isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT
                and isinstance(node.value, ast.Name) and node.value.id == "os"):
            continue
        up = parent[node]
        if node.attr in ("putenv", "unsetenv") or (isinstance(up, ast.Subscript) and not isinstance(up.ctx, ast.Load)) \
                or (isinstance(up, ast.Attribute) and up.attr in MUTATORS):
            uses.append((node.lineno, "write"))
        elif isinstance(up, ast.Call) and isinstance(up.func, ast.Name) and up.func.id == "dict" and up.args == [node]:
            uses.append((node.lineno, "copy"))
        else:
            uses.append((node.lineno, "read"))
    return sorted(uses)


def test_settings_are_read_in_one_place():
    """Every environment variable is read by include/deployment.py; elsewhere the environment is only copied whole
    for a child process (the SUT, `airflow dags test`), never looked into."""
    assert ONE_PLACE in SOURCES and len(SOURCES) > 50
    reads = [f"{path.relative_to(REPO)}:{line}" for path in SOURCES if path != ONE_PLACE
             for line, kind in _environment_uses(path) if kind == "read"]
    assert not reads, f"read the setting in {ONE_PLACE.relative_to(REPO)} and pass it down instead: {reads}"
    assert any(kind == "read" for _, kind in _environment_uses(ONE_PLACE))


def test_nothing_writes_the_environment():
    """A setting is passed down (a Deployment, or an env dict for a child process), never put into os.environ."""
    writes = [f"{path.relative_to(REPO)}:{line}" for path in SOURCES
              for line, kind in _environment_uses(path) if kind == "write"]
    assert not writes, f"these change os.environ: {writes}"


def test_the_guard_sees_reads_and_writes(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import os\nfrom os import getenv\nos.environ.get('A')\nenv = dict(os.environ)\n"
                     "os.environ['B'] = '1'\nos.environ.pop('B')\nos.getenv('C')\n")
    assert _environment_uses(probe) == [(2, "read"), (3, "read"), (4, "copy"), (5, "write"), (6, "write"),
                                        (7, "read")]


KUBERNETES_ENV = {
    "MLPERF_NAMESPACE": "bench", "MLPERF_KUBERNETES_CONN_ID": "gpu_cluster", "MLPERF_IMAGE_PULL_POLICY": "Always",
    "MLPERF_SUT_SERVICE_ACCOUNT": "bench-sut", "MLPERF_NODE_LABEL_KEY": "example.com/gpu-node",
    "MLPERF_MODEL_PVC": "llama-weights", "MLPERF_DATASET_PVC": "cnn", "MLPERF_ARTIFACTS_PVC": "results.nfs",
    "MLPERF_MODEL_MOUNT": "/weights", "MLPERF_DATASET_MOUNT": "/datasets", "MLPERF_SHM_SIZE": "512Mi",
    "MLPERF_POD_STARTUP_TIMEOUT_S": "300", "MLPERF_SERVER_LIFETIME_S": "7200",
}


def test_kubernetes_settings_are_part_of_the_deployment():
    assert deployment.load({}).kubernetes == deployment.KubernetesSettings()
    assert deployment.load(KUBERNETES_ENV).kubernetes == deployment.KubernetesSettings(
        namespace="bench", conn_id="gpu_cluster", image_pull_policy="Always", service_account="bench-sut",
        node_label_key="example.com/gpu-node", model_pvc="llama-weights", dataset_pvc="cnn",
        artifacts_pvc="results.nfs", model_mount="/weights", dataset_mount="/datasets", shm_size="512Mi",
        startup_timeout_s=300, server_lifetime_s=7200)


@pytest.mark.parametrize("name, value, message", [
    ("MLPERF_NAMESPACE", "Bench_1", "expected a namespace name (lower-case letters, digits and '-', at most 63 "
                                    "characters); unset, it is mlperf"),
    ("MLPERF_IMAGE_PULL_POLICY", "sometimes", "expected one of IfNotPresent, Always, Never"),
    ("MLPERF_SUT_SERVICE_ACCOUNT", "SUT account", "expected a service account name"),
    ("MLPERF_NODE_LABEL_KEY", "example.com/", "expected a label key ([prefix/]name"),
    ("MLPERF_MODEL_PVC", "Llama_Weights", "expected a PVC name (lower-case letters, digits, '-' and '.'); unset, "
                                          "it is mlperf-model"),
    ("MLPERF_ARTIFACTS_PVC", "-results", "expected a PVC name"),
    ("MLPERF_MODEL_MOUNT", "models", "expected an absolute path in the pods; unset, it is /models"),
    ("MLPERF_SHM_SIZE", "16 GB", "expected a Kubernetes quantity such as 16Gi; unset, it is 16Gi"),
    ("MLPERF_POD_STARTUP_TIMEOUT_S", "20m", "expected an integer"),
    ("MLPERF_SERVER_LIFETIME_S", "0", "must be at least 1"),
])
def test_a_bad_kubernetes_setting_names_the_variable_and_the_fix(name, value, message):
    with pytest.raises(deployment.DeploymentError) as refused:
        deployment.load({name: value})
    assert str(refused.value).startswith(f"{name}=") and message in str(refused.value)


def test_the_default_history_is_a_file_in_the_artefacts_root(tmp_path):
    dep = deployment.load({"MLPERF_ARTIFACTS_DIR": str(tmp_path)})
    assert dep.history_url == f"sqlite:///{tmp_path / 'history.sqlite'}"
    assert dep.default_history_file == tmp_path / "history.sqlite"
    assert deployment.load({"MLPERF_ARTIFACTS_DIR": str(tmp_path),
                            "MLPERF_HISTORY_URL": "postgresql://db/history"}).default_history_file is None


def test_settings_read_outside_the_deployment(tmp_path):
    assert deployment.nltk_data_dir({}) == REPO / ".cache" / "nltk_data"
    assert deployment.nltk_data_dir({"NLTK_DATA": f"{tmp_path}:/usr/share/nltk_data"}) == tmp_path
    assert deployment.ui_port({}) == 8080 and deployment.ui_port({"MLPERF_UI_PORT": "9090"}) == 9090
    with pytest.raises(deployment.DeploymentError, match=r"^MLPERF_UI_PORT='http' is not a port number \(1-65535\)$"):
        deployment.ui_port({"MLPERF_UI_PORT": "http"})
