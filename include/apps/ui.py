"""`python -m include.apps.ui` (`make ui`): the Airflow UI with the Benchmarks page on the demo's artefacts and history.

Runs `airflow api-server` on 127.0.0.1 with what the page needs and nobody should have to set by hand: the demo's
AIRFLOW_HOME (.airflow), the plugins folder, MLPERF_ARTIFACTS_DIR (.artifacts, so report links open) and the
demo's history (MLPERF_HISTORY_URL, else .artifacts/history.sqlite), with the published MLPerf results loaded. One
user, `admin`, whose password is generated once and kept in <airflow home>/ui-passwords.json; the URL and the
login are printed before the server starts. Ctrl-C stops it.

Before Airflow starts it checks what would otherwise fail inside it: the port (MLPERF_UI_PORT or --port, default
8080) must be a number and free on 127.0.0.1, and the history must be readable. It writes the history only to bring
its schema to head and load the published results, and a history it may not write (a read-only file or mount,
another user's database) is shown as it is: the page only reads. Exit status: the server's own once it ran (0 after
Ctrl-C), 2 the port is no port number or is taken, 3 the history cannot be read (corrupt, not a database,
unreachable), each one line on stderr.
"""
from __future__ import annotations

import argparse
import json
import secrets
import socket
import subprocess
import sys
from pathlib import Path

from include import deployment
from include.apps.demo import REPO, demo_env

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


EXIT_USAGE, EXIT_HISTORY = 2, 3


class Refused(Exception):
    """What stops `make ui` before Airflow starts: one line, and the exit status."""

    def __init__(self, line: str, status: int) -> None:
        super().__init__(line)
        self.status = status


def check_port(port: int) -> None:
    """The port is free on 127.0.0.1 (bound as uvicorn binds it, SO_REUSEADDR); else the api-server would fail with
    the bind error in its log, after the login was printed."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise Refused(f"port {port} on 127.0.0.1 is taken ({exc.strerror}): stop what listens there, or choose "
                          f"another port with MLPERF_UI_PORT=<port> make ui", EXIT_USAGE) from None


def prepare_history(history_url: str) -> tuple[int, str | None]:
    """The history's schema at head and the published results loaded: how many published results, and a note when
    the history could not be written (it is shown as it is: the page only reads). Refused when it cannot be read."""
    from sqlalchemy.exc import SQLAlchemyError

    from include.analysis.published import load_published
    from include.history import HistoryStore, HistoryUnavailable

    try:
        with HistoryStore(history_url) as store:
            store.upgrade()
            return store.replace_published(load_published()), None
    except (HistoryUnavailable, SQLAlchemyError, OSError) as exc:
        not_written = str(exc).splitlines()[0]
    try:
        with HistoryStore(history_url, readonly=True) as reader:
            revision = reader.current_revision()
            published = len(reader.published()) if revision else 0
    except (HistoryUnavailable, SQLAlchemyError, OSError) as exc:
        raise Refused(str(exc).splitlines()[0], EXIT_HISTORY) from None
    return published, (f"the history cannot be written ({not_written}); shown as it is"
                       + ("" if revision else ": empty") + ", published results not refreshed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.apps.ui", description=__doc__.splitlines()[0])
    parser.add_argument("--airflow-home", type=Path, default=REPO / ".airflow")
    parser.add_argument("--artifacts", type=Path, default=REPO / ".artifacts")
    parser.add_argument("--port", help="default: MLPERF_UI_PORT, else 8080")
    args = parser.parse_args(argv)
    try:
        return serve(args)
    except Refused as refused:
        print(f"error: {refused}", file=sys.stderr)
        return refused.status


def serve(args: argparse.Namespace) -> int:
    try:
        port = deployment.port_number(args.port, "--port") if args.port is not None else deployment.ui_port()
    except deployment.DeploymentError as exc:
        raise Refused(str(exc), EXIT_USAGE) from None
    check_port(port)
    airflow_home, artifacts = args.airflow_home.resolve(), args.artifacts.resolve()
    passwords, password = ui_password(airflow_home)
    env = ui_env(airflow_home, artifacts, passwords)
    try:
        history = deployment.load(env).history_url      # the Benchmarks page's: MLPERF_HISTORY_URL, else the demo's
    except deployment.DeploymentError as exc:
        raise Refused(str(exc), EXIT_USAGE) from None
    if history.startswith("sqlite:///") and not Path(history.removeprefix("sqlite:///")).is_file():
        print(f"note: no history at {history} yet: run `make demo` first to fill it", file=sys.stderr)
    published, note = prepare_history(history)
    if note:
        print(f"note: {note}", file=sys.stderr)
    airflow = Path(sys.executable).with_name("airflow")
    airflow_cmd = str(airflow) if airflow.exists() else "airflow"
    subprocess.run([airflow_cmd, "db", "migrate"], env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    print(f"history:    {history.split('@')[-1]} ({published} published MLPerf results as reference)")
    print(f"artefacts:  {artifacts}")
    print(f"Airflow UI: {base}/  (the Benchmarks page: nav item 'MLPerf', or {base}/mlperf-benchmarks/)")
    print(f"login:      {USER} / {password}   (kept in {passwords})")
    print("Ctrl-C stops the server.", flush=True)
    try:
        return subprocess.run([airflow_cmd, "api-server", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, cwd=REPO).returncode
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
