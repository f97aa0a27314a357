"""What can be checked of the image without building it, and that the package installs into a clean venv."""
import re
import shutil
import subprocess
import sys
import venv

from conftest import SUT_SRC

DOCKERFILE = (SUT_SRC / "Dockerfile").read_text()


def test_dockerfile_base_is_pinned_official_vllm_image_unless_the_cpu_flavour_names_one():
    assert re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.MULTILINE) == ["${BASE}"]
    assert re.findall(r"^ARG BASE=(\S+)", DOCKERFILE, re.MULTILINE) == ["vllm/vllm-openai:v0.26.0"]
    assert re.findall(r"^ARG FLAVOUR=(\S+)", DOCKERFILE, re.MULTILINE) == ["gpu"]
    # the cpu flavour installs offline from the wheelhouse, pinned by the same constraints as .venv-sut
    assert "--no-index --find-links /opt/wheels -r /tmp/requirements.txt" in DOCKERFILE
    assert "-c /opt/wheels/constraints.txt" in DOCKERFILE


def test_dockerfile_runs_as_non_root_with_cli_entrypoint():
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r'^ENTRYPOINT \["python3", "-m", "mlperf_sut"\]', DOCKERFILE, re.MULTILINE)
    assert "mlcommons-loadgen==6.0.17" in DOCKERFILE


def test_package_installs_into_clean_venv(tmp_path):
    # No network here: build the wheel with this venv's setuptools (from a copy, so no build/ lands in the
    # checkout), then install it without dependencies into a fresh venv.
    source = shutil.copytree(SUT_SRC, tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    tmp_path / "dist", source], check=True, cwd=tmp_path, capture_output=True)
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    wheel = next((tmp_path / "dist").glob("mlperf_sut-*.whl"))
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", wheel], check=True, cwd=tmp_path,
                   capture_output=True)
    done = subprocess.run([python, "-m", "mlperf_sut", "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "build-tiny-model" in done.stdout
    files = ["user.conf", "result.schema.json", "user_conf.schema.json", "engine_args.schema.json",
             "engine_presets.json"]
    data = subprocess.run([python, "-c", "import importlib.resources as r; f = r.files('mlperf_sut'); "
                           f"print(*((f / name).is_file() for name in {files!r}))"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert data.stdout.split() == ["True"] * len(files), data.stderr
