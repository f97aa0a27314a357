-- Run once by the postgres image on an empty data directory (docker-compose.yaml mounts it into
-- /docker-entrypoint-initdb.d/). The Airflow metadata database `airflow` comes from POSTGRES_DB; this adds the
-- benchmark history store (MLPERF_HISTORY_URL), kept apart so Airflow's migrations and `db clean` never touch it.
CREATE DATABASE mlperf_history OWNER airflow;
