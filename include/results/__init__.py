"""Reading results: a run's folder (`run_artifacts`), its result.json as typed records (`sut_result`) and LoadGen's
logs (`loadgen_logs`)."""
