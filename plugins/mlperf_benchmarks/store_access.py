"""The page's read-only history store: one engine per URL, the URL read from the deployment at each request."""
from __future__ import annotations

import threading

from include.history import HistoryStore, HistoryUnavailable

_stores: dict[str, HistoryStore] = {}
_stores_lock = threading.Lock()


class HistoryNotCreated(HistoryUnavailable):
    """The default SQLite history file does not exist yet: no run has been recorded (an empty history)."""


def history_url() -> str:
    """The deployment's history URL (include/deployment.py: MLPERF_HISTORY_URL, else a SQLite file in the artefacts
    folder). The page never creates that file: a missing one is an empty history."""
    from include import deployment

    try:
        dep = deployment.load()
    except deployment.DeploymentError as exc:
        raise HistoryUnavailable(f"the deployment's settings are wrong, so the Benchmarks page does not know where "
                                 f"the benchmark history is: {exc}") from None
    default_file = dep.default_history_file
    if default_file is not None and not default_file.is_file():
        raise HistoryNotCreated(f"no benchmark history yet: {default_file} does not exist")
    return dep.history_url


def get_store() -> HistoryStore:
    """The read-only store for the configured URL (read at each request, so a changed setting takes effect)."""
    url = history_url()
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = HistoryStore(url, readonly=True)
        return store


def reset_stores() -> None:
    """Dispose cached engines (tests switch databases)."""
    with _stores_lock:
        for store in _stores.values():
            store.dispose()
        _stores.clear()


def is_missing_schema(exc: HistoryUnavailable) -> bool:
    """A database the pipeline has not written to yet: shown as an empty history, not as an outage."""
    return isinstance(exc, HistoryNotCreated) or "no history schema" in str(exc)
