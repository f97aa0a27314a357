"""Entry point Airflow's plugin loader finds: registers the Benchmarks UI plugin (package `mlperf_benchmarks`)."""
from mlperf_benchmarks import MlperfBenchmarksPlugin

__all__ = ["MlperfBenchmarksPlugin"]
