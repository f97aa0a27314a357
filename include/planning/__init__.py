"""Planning: the DAG's params become the runs to make (`plan`), the engine settings become the SUT's flags
(`engine_settings`), and bad params are refused before a run exists (`trigger_guard`). include/runners/ carries the
plan out."""
