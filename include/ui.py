"""`python -m include.ui` (`make ui`): the Airflow UI with the Benchmarks page on the demo's artefacts and history.

Runs `airflow api-server` on 127.0.0.1 with what the page needs and nobody should have to set by hand: the demo's
AIRFLOW_HOME (.airflow), the plugins folder, MLPERF_ARTIFACTS_DIR (.artifacts, so report links open) and the
demo's history (MLPERF_HISTORY_URL, else .artifacts/history.sqlite), with the published MLPerf results loaded. One
user, `admin`, whose password is generated once and kept in <airflow home>/ui-passwords.json; the URL and the
login are printed before the server starts. Ctrl-C stops it.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from include.demo import REPO, demo_env

USER = "admin"


def ui_password(airflow_home: Path) -> tuple[Path, str]:
    """The UI user's password: generated on the first start, then the same one (the file is readable by you only)."""
    path = airflow_home / "ui-passwords.json"
    if path.is_file():
        return path, json.loads(path.read_text())[USER]
    airflow_home.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    path.write_text(json.dumps({USER: password}))
    path.chmod(0o600)
    return path, password


def ui_env(airflow_home: Path, artifacts: Path, passwords: Path) -> dict[str, str]:
    env = demo_env(airflow_home=airflow_home, artifacts=artifacts, nodes="local-0,local-1", sut_python=None)
    env.update({
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": env.get("AIRFLOW__API_AUTH__JWT_SECRET") or secrets.token_urlsafe(64),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": env.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
    })
    return env


def prepare_history(history_url: str) -> int:
    """The history's schema at head and the published results loaded; how many published results."""
    from include.history import HistoryStore
    from include.published import load_published

    with HistoryStore(history_url) as store:
        store.upgrade()
        return store.replace_published(load_published())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.ui", description=__doc__.splitlines()[0])
    parser.add_argument("--airflow-home", type=Path, default=REPO / ".airflow")
    parser.add_argument("--artifacts", type=Path, default=REPO / ".artifacts")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MLPERF_UI_PORT", "8080")))
    args = parser.parse_args(argv)
    airflow_home, artifacts = args.airflow_home.resolve(), args.artifacts.resolve()
    passwords, password = ui_password(airflow_home)
    env = ui_env(airflow_home, artifacts, passwords)
    history = env["MLPERF_HISTORY_URL"]
    if history.startswith("sqlite:///") and not Path(history.removeprefix("sqlite:///")).is_file():
        print(f"note: no history at {history} yet: run `make demo` first to fill it", file=sys.stderr)
    published = prepare_history(history)
    airflow = Path(sys.executable).with_name("airflow")
    airflow_cmd = str(airflow) if airflow.exists() else "airflow"
    subprocess.run([airflow_cmd, "db", "migrate"], env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{args.port}"
    print(f"history:    {history.split('@')[-1]} ({published} published MLPerf results as reference)")
    print(f"artefacts:  {artifacts}")
    print(f"Airflow UI: {base}/  (the Benchmarks page: nav item 'MLPerf', or {base}/mlperf-benchmarks/)")
    print(f"login:      {USER} / {password}   (kept in {passwords})")
    print("Ctrl-C stops the server.", flush=True)
    try:
        return subprocess.run([airflow_cmd, "api-server", "--host", "127.0.0.1", "--port", str(args.port)],
                              env=env, cwd=REPO).returncode
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
