"""Serving a run's HTML report from the artefacts root, and nothing outside it.

The history store keeps each run's `report_path` (written by the pipeline). The path is data from a database, so it
is treated as untrusted: it is resolved (symlinks included) and served only when the real file lies under the
deployment's artefacts root (include/deployment.py: MLPERF_ARTIFACTS_DIR). Files the report links to (its charts) are
served from the report's own folder under the same rule. Anything else is refused, never "fixed up".
"""
from __future__ import annotations

from pathlib import Path

from include import deployment

REPORT_INDEX = "index.html"


class ReportUnavailable(Exception):
    """The run has no report file to show (none recorded, or the file is gone). The message is for the user."""


class ReportRefused(Exception):
    """The recorded path, or a requested file, lies outside the artefacts root."""


def artifacts_root() -> Path:
    """The deployment's artefacts root, read at each request like the history URL."""
    try:
        return deployment.load().artifacts_dir
    except deployment.DeploymentError as exc:
        raise ReportUnavailable(f"the deployment's settings are wrong, so no report can be served: {exc}") from None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def resolve_report(report_path: str | None, root: Path) -> Path:
    """The real path of a run's report file, checked to lie under `root`."""
    if not report_path:
        raise ReportUnavailable("this run has no report recorded")
    if "\x00" in report_path:
        raise ReportRefused("invalid report path")
    try:
        real_root = root.resolve(strict=True)
    except OSError:
        raise ReportUnavailable(f"the artefacts root {root} (MLPERF_ARTIFACTS_DIR) does not exist on this server"
                                ) from None
    candidate = Path(report_path)
    if not candidate.is_absolute():
        candidate = real_root / candidate
    real = candidate.resolve()
    if not _inside(real, real_root):
        raise ReportRefused("the recorded report lies outside the artefacts root")
    if real.is_dir():
        real = real / REPORT_INDEX
    if not real.is_file():
        raise ReportUnavailable("the report file is missing from the artefacts folder")
    return real


def resolve_asset(report_file: Path, asset: str, root: Path) -> Path:
    """A file the report links to, relative to the report's folder; refused when it escapes that folder."""
    if not asset or "\x00" in asset or asset.startswith(("/", "\\")) or ":" in asset.split("/")[0]:
        raise ReportRefused("invalid file name")
    folder = report_file.parent
    real = (folder / asset).resolve()
    if not _inside(real, folder) or not _inside(real, root.resolve()):
        raise ReportRefused("the requested file lies outside the report's folder")
    if not real.is_file():
        raise ReportUnavailable("no such file in the report's folder")
    return real
