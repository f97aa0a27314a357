"""include/notifications.py: the message (pure), the channels, and the Airflow notifier end to end over SMTP."""
from __future__ import annotations

import json
import logging
import socketserver
import threading
from types import SimpleNamespace

import pytest

from include.notifications import BenchmarkNotifier, build_message, deliver, resolve_channel

REGRESSION = {"metric": "tokens_per_second", "node": "node-a", "scenario": "Offline", "branch": "single",
              "current": 4317.2, "baseline": 5020.0, "change_pct": -14.0, "threshold_pct": 5.0,
              "explanation": "throughput 14% below the median of 5 comparable runs"}


# -- the message --------------------------------------------------------------------------------------------------

def test_nothing_to_say_when_the_run_succeeded_without_regressions():
    assert build_message(dag_id="mlperf", run_id="r1", status="success") is None


def test_regression_message_names_metric_place_change_and_verdict():
    msg = build_message(dag_id="mlperf", run_id="r1", regressions=[REGRESSION],
                        report_url="http://airflow/mlperf-benchmarks/runs/r1/report/", fail_on_regression=True)
    assert msg.severity == "regression"
    assert msg.subject == "MLPerf benchmark regression: 1 metric(s) worse in mlperf r1"
    assert "tokens_per_second -14.0% on Offline · single · node-a (threshold 5.0%)" in msg.text
    assert "the run is failed (fail_on_regression)" in msg.text
    assert msg.text.endswith("Report: http://airflow/mlperf-benchmarks/runs/r1/report/")
    off = build_message(dag_id="mlperf", run_id="r1", regressions=["rougeL node-a Offline -2.1%"])
    assert "reported only (fail_on_regression is off)" in off.text and "rougeL node-a Offline -2.1%" in off.text


def test_failure_message_lists_failed_runs_and_error():
    msg = build_message(dag_id="mlperf", run_id="r2", status="failed",
                        failed_runs=["single/node-b/Server/performance"], error="BenchmarkFailed: 1 run(s) failed")
    assert msg.severity == "failure" and msg.subject.startswith("MLPerf benchmark FAILED")
    assert "single/node-b/Server/performance" in msg.text and "BenchmarkFailed: 1 run(s) failed" in msg.text


def test_long_lists_are_cut_and_html_is_escaped():
    hostile = "<script>alert(1)</script>"
    msg = build_message(dag_id="mlperf", run_id=hostile, failed_runs=[f"run-{i}" for i in range(25)],
                        report_url='http://x/"><script>')
    assert "... and 5 more" in msg.text
    assert hostile not in msg.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in msg.html
    assert '"><script>' not in msg.html


def test_channel_resolution():
    assert resolve_channel(None, None) == "log"
    assert resolve_channel("c", None, "slackwebhook") == "slack"
    assert resolve_channel("c", None, "smtp") == "email"
    assert resolve_channel("c", None, "http") == "log"
    assert resolve_channel("c", "LOG", "smtp") == "log"
    with pytest.raises(ValueError):
        resolve_channel(None, "pigeon")


# -- the notifier -------------------------------------------------------------------------------------------------

def _context(run_id="scheduled__2026-11-07T02:00:00+00:00", exception=None):
    return {"dag_run": SimpleNamespace(dag_id="mlperf_llama31_8b", run_id=run_id), "run_id": run_id,
            "ti": SimpleNamespace(task_id="verdict"), "exception": exception}


def test_log_is_the_default_channel(caplog, monkeypatch):
    monkeypatch.delenv("MLPERF_NOTIFY_CONN", raising=False)
    monkeypatch.delenv("MLPERF_NOTIFY_TYPE", raising=False)
    notifier = BenchmarkNotifier(status="failed")
    with caplog.at_level(logging.INFO, logger="include.notifications"):
        notifier(_context(exception=RuntimeError("node-b pod OOMKilled")))
    assert notifier.last_channel == "log"
    assert "task verdict: RuntimeError: node-b pod OOMKilled" in caplog.text
    assert "MLPerf benchmark FAILED: mlperf_llama31_8b scheduled__2026-11-07T02:00:00+00:00" in caplog.text


def test_success_without_regressions_sends_nothing(caplog):
    notifier = BenchmarkNotifier()
    notifier(_context())
    assert notifier.last_message is None and notifier.last_channel is None


def test_undeliverable_notification_falls_back_to_the_log(caplog, monkeypatch):
    monkeypatch.setenv("MLPERF_NOTIFY_CONN", "no_such_connection_for_mlperf")
    message = build_message(dag_id="d", run_id="r", regressions=[REGRESSION])
    with caplog.at_level(logging.INFO, logger="include.notifications"):
        assert deliver(message) == "log"
    assert "tokens_per_second -14.0%" in caplog.text


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: greet, accept one message, keep it."""

    def handle(self):
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line.decode().strip().upper()
            if verb.startswith(("EHLO", "HELO")):
                self.wfile.write(b"250 test\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go on\r\n")
                body = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    body.append(chunk)
                self.server.messages.append(b"".join(body).decode())
                self.wfile.write(b"250 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture()
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_email_through_an_smtp_connection(smtp_server, monkeypatch, airflow_home):
    port = smtp_server.server_address[1]
    monkeypatch.setenv("AIRFLOW_CONN_MLPERF_SMTP", json.dumps(
        {"conn_type": "smtp", "host": "127.0.0.1", "port": port, "login": "", "password": "",
         "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "mlperf@example.org"}}))
    monkeypatch.setenv("MLPERF_NOTIFY_CONN", "mlperf_smtp")
    monkeypatch.setenv("MLPERF_NOTIFY_TO", "perf-team@example.org")
    monkeypatch.delenv("MLPERF_NOTIFY_TYPE", raising=False)
    notifier = BenchmarkNotifier(regressions=[REGRESSION], report_url="http://airflow/report/")
    notifier(_context())
    assert notifier.last_channel == "email"
    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    assert "perf-team@example.org" in mail and "MLPerf benchmark regression" in mail
