"""Telling people when a benchmark run failed or regressed, through Airflow's notifier mechanism.

`build_message` is a pure function of plain values (run ids, failed SUT runs, regressions): it decides whether
there is anything to say and says it, as plain text (logs, Slack) and escaped HTML (e-mail).

`BenchmarkNotifier` is an Airflow `BaseNotifier`, so the DAG can use it both ways Airflow offers:

    on_failure_callback=BenchmarkNotifier(status="failed")          # DAG- or task-level callback
    BenchmarkNotifier(failed_runs=..., regressions=..., report_url=...).notify(context)   # inside a notify task

Where the message goes is configuration, not code: the Airflow connection named by MLPERF_NOTIFY_CONN decides
(`slackwebhook` / `slack` connections post to Slack through apache-airflow-providers-slack, `smtp` / `email`
connections send e-mail through apache-airflow-providers-smtp to MLPERF_NOTIFY_TO); MLPERF_NOTIFY_TYPE
(`log` | `slack` | `email`) overrides the connection's type. With neither set, the message is logged (the task
log is the default channel). A notification that cannot be delivered is logged with the reason and never fails
the run: the benchmark's own verdict decides the run's colour (`fail_on_regression` is enforced by the DAG's
verdict step, not here).
"""
from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

ENV_CONN = "MLPERF_NOTIFY_CONN"
ENV_TYPE = "MLPERF_NOTIFY_TYPE"
ENV_TO = "MLPERF_NOTIFY_TO"
ENV_SLACK_CHANNEL = "MLPERF_NOTIFY_SLACK_CHANNEL"
CHANNELS = ("log", "slack", "email")
# Airflow connection types -> channel
CONN_TYPES = {"slack": "slack", "slackwebhook": "slack", "smtp": "email", "email": "email"}
MAX_LISTED = 20      # a message lists at most this many failed runs / regressions, then says how many more


@dataclass(frozen=True)
class Message:
    severity: str            # "failure" | "regression"
    subject: str
    text: str                # plain text: logs and Slack
    html: str                # every value escaped: e-mail


def _regression_line(item: Mapping[str, Any] | str) -> str:
    if isinstance(item, str):
        return item
    where = " · ".join(str(item[k]) for k in ("scenario", "branch", "node") if item.get(k))
    change = item.get("change_pct")
    change_text = f" {change:+.1f}%" if isinstance(change, (int, float)) else ""
    threshold = item.get("threshold_pct")
    threshold_text = f" (threshold {threshold:.1f}%)" if isinstance(threshold, (int, float)) else ""
    line = f"{item.get('metric', '?')}{change_text} on {where}{threshold_text}"
    if item.get("explanation"):
        line += f": {item['explanation']}"
    return line


def _listed(lines: Sequence[str]) -> list[str]:
    shown = list(lines[:MAX_LISTED])
    if len(lines) > MAX_LISTED:
        shown.append(f"... and {len(lines) - MAX_LISTED} more")
    return shown


def build_message(*, dag_id: str, run_id: str, status: str | None = None, failed_runs: Sequence[str] = (),
                  regressions: Sequence[Mapping[str, Any] | str] = (), error: str | None = None,
                  report_url: str | None = None, fail_on_regression: bool = False) -> Message | None:
    """The notification for one DAG run, or None when there is nothing to report (no failure, no regression).

    `status` is the DAG run's or task's state where known ("failed" makes it a failure even with no failed SUT run
    listed); `failed_runs` names SUT runs that failed or are missing; `regressions` are Regression dicts (or
    already formatted lines); `error` is the failure's message. Values are used as given and escaped for HTML.
    """
    failed = status == "failed" or bool(failed_runs) or bool(error)
    if not failed and not regressions:
        return None
    severity = "failure" if failed else "regression"
    regression_lines = [_regression_line(r) for r in regressions]
    if failed:
        headline = f"MLPerf benchmark FAILED: {dag_id} {run_id}"
    else:
        headline = f"MLPerf benchmark regression: {len(regression_lines)} metric(s) worse in {dag_id} {run_id}"

    sections: list[tuple[str, list[str]]] = []
    if error:
        sections.append(("Error", [error]))
    if failed_runs:
        sections.append((f"{len(failed_runs)} SUT run(s) failed or missing", _listed(list(failed_runs))))
    if regression_lines:
        verdict = ("the run is failed (fail_on_regression)" if fail_on_regression
                   else "reported only (fail_on_regression is off)")
        sections.append((f"{len(regression_lines)} regression(s), {verdict}", _listed(regression_lines)))

    text_lines = [headline]
    for title, lines in sections:
        text_lines.append(f"{title}:")
        text_lines.extend(f"  - {line}" for line in lines)
    if report_url:
        text_lines.append(f"Report: {report_url}")

    parts = [f"<h2>{html.escape(headline)}</h2>"]
    for title, lines in sections:
        parts.append(f"<h3>{html.escape(title)}</h3><ul>"
                     + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>")
    if report_url:
        parts.append(f'<p><a href="{html.escape(report_url, quote=True)}">Open the report</a></p>')
    return Message(severity=severity, subject=headline, text="\n".join(text_lines), html="\n".join(parts))


# ----------------------------------------------------------------------------------------------------------------
# Channels


def resolve_channel(conn_id: str | None, channel: str | None, conn_type: str | None = None) -> str:
    """The channel to use: explicit choice, else MLPERF_NOTIFY_TYPE, else the connection's type, else 'log'."""
    chosen = channel or os.environ.get(ENV_TYPE) or None
    if chosen:
        chosen = chosen.strip().lower()
        if chosen not in CHANNELS:
            raise ValueError(f"{ENV_TYPE}={chosen!r}: choose one of {', '.join(CHANNELS)}")
        return chosen
    if conn_id and conn_type:
        return CONN_TYPES.get(conn_type.lower(), "log")
    return "log"


def _connection_type(conn_id: str) -> str | None:
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id).conn_type
    except Exception as exc:  # unknown connection: say so, fall back to the log
        log.warning("notification connection %r not usable (%s): logging the message instead", conn_id,
                    type(exc).__name__)
        return None


def send_log(message: Message) -> None:
    level = logging.WARNING if message.severity == "failure" else logging.INFO
    log.log(level, "%s", message.text)


def send_slack(message: Message, conn_id: str, conn_type: str | None) -> None:
    if conn_type == "slack":     # API token connection: needs a channel
        from airflow.providers.slack.hooks.slack import SlackHook

        channel = os.environ.get(ENV_SLACK_CHANNEL)
        if not channel:
            raise ValueError(f"{ENV_SLACK_CHANNEL} must name the Slack channel for a 'slack' connection")
        SlackHook(slack_conn_id=conn_id).client.chat_postMessage(channel=channel, text=message.text)
    else:
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        SlackWebhookHook(slack_webhook_conn_id=conn_id).send(text=message.text)


def send_email(message: Message, conn_id: str, to: str | Sequence[str] | None) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    recipients = to or os.environ.get(ENV_TO)
    if not recipients:
        raise ValueError(f"{ENV_TO} must list the e-mail recipients")
    with SmtpHook(smtp_conn_id=conn_id) as hook:
        hook.send_email_smtp(to=recipients, subject=message.subject, html_content=message.html)


def deliver(message: Message, *, conn_id: str | None = None, channel: str | None = None,
            to: str | Sequence[str] | None = None) -> str:
    """Send the message; returns the channel that carried it ('log' when delivery elsewhere failed)."""
    conn_id = conn_id or os.environ.get(ENV_CONN) or None
    conn_type = _connection_type(conn_id) if conn_id else None
    chosen = resolve_channel(conn_id, channel, conn_type)
    if chosen != "log" and not conn_id:
        log.warning("notification channel %s needs %s: logging the message instead", chosen, ENV_CONN)
        chosen = "log"
    try:
        if chosen == "slack":
            send_slack(message, conn_id, conn_type)
        elif chosen == "email":
            send_email(message, conn_id, to)
    except Exception as exc:  # a notification failing must not hide or change the benchmark's outcome
        log.error("notification via %s (connection %r) failed: %s: %s; logging it instead", chosen, conn_id,
                  type(exc).__name__, exc)
        chosen = "log"
    if chosen == "log":
        send_log(message)
    else:
        log.info("notification sent via %s (connection %r): %s", chosen, conn_id, message.subject)
    return chosen


# ----------------------------------------------------------------------------------------------------------------
# The Airflow notifier


class BenchmarkNotifier(BaseNotifier):
    """Notify about a failed or regressed benchmark run (a callback or a notify task's body)."""

    template_fields = ("report_url",)

    def __init__(self, *, status: str | None = None, failed_runs: Sequence[str] = (),
                 regressions: Sequence[Mapping[str, Any] | str] = (), report_url: str | None = None,
                 fail_on_regression: bool = False, conn_id: str | None = None, channel: str | None = None,
                 to: str | Sequence[str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.status = status
        self.failed_runs = list(failed_runs)
        self.regressions = list(regressions)
        self.report_url = report_url
        self.fail_on_regression = fail_on_regression
        self.conn_id = conn_id
        self.channel = channel
        self.to = to
        self.last_message: Message | None = None
        self.last_channel: str | None = None

    @staticmethod
    def _from_context(context: Mapping[str, Any]) -> dict[str, Any]:
        dag_run = context.get("dag_run")
        dag = context.get("dag")
        ti = context.get("ti") or context.get("task_instance")
        exception = context.get("exception")
        error = None
        if exception is not None:
            error = f"{type(exception).__name__}: {exception}" if isinstance(exception, BaseException) else str(
                exception)
        elif context.get("reason"):
            error = str(context["reason"])
        if ti is not None and getattr(ti, "task_id", None) and error:
            error = f"task {ti.task_id}: {error}"
        return {
            "dag_id": getattr(dag_run, "dag_id", None) or getattr(dag, "dag_id", None) or "?",
            "run_id": context.get("run_id") or getattr(dag_run, "run_id", None) or "?",
            "error": error,
        }

    def notify(self, context) -> None:
        plain = self._from_context(context or {})
        message = build_message(dag_id=plain["dag_id"], run_id=plain["run_id"], status=self.status,
                                failed_runs=self.failed_runs, regressions=self.regressions, error=plain["error"],
                                report_url=self.report_url, fail_on_regression=self.fail_on_regression)
        self.last_message = message
        if message is None:
            log.info("benchmark %s: no failure and no regression, nothing to notify", plain["run_id"])
            self.last_channel = None
            return
        self.last_channel = deliver(message, conn_id=self.conn_id, channel=self.channel, to=self.to)
