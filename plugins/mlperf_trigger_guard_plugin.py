"""Registers include.planning.trigger_guard with the api-server: a trigger of the benchmark DAG with a conf key that is
no param (or a LoadGen schedule no node can hold) is refused with 400 before a DAG run exists (Airflow itself would
run the defaults without a word); the caller's login is checked before the body is read, the body is capped (413)."""
from airflow.plugins_manager import AirflowPlugin

from include.planning.trigger_guard import TriggerGuard


class MlperfTriggerGuardPlugin(AirflowPlugin):
    name = "mlperf_trigger_guard"
    fastapi_root_middlewares = [{"middleware": TriggerGuard, "args": [], "kwargs": {},
                                 "name": "Refuse unknown params of mlperf_llama31_8b"}]
