# The Airflow image of docker-compose.yaml: the official Airflow 3.3.2 image plus this project's pinned Airflow-side
# dependencies (requirements.txt, every transitive version fixed by constraints.txt, the same files `make` installs).
# dags/, plugins/, include/ and the result schema are mounted by compose, not baked in, so editing a DAG needs no
# rebuild; rebuild when requirements.txt or constraints.txt change:
#
#   docker compose build            # or: docker build -f docker/airflow.Dockerfile -t mlperf-airflow:latest .
#
# Build context: the repository root.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:slim-${AIRFLOW_VERSION}-python${PYTHON_VERSION}

ARG AIRFLOW_VERSION
USER root
# Owned by the airflow user and group 0 (the official image's convention for arbitrary AIRFLOW_UID): compose's named
# volume for the api-server's passwords file takes this ownership when it is first created.
RUN mkdir -p /opt/airflow/auth /opt/airflow/sut_image/mlperf_sut \
 && chown -R airflow:0 /opt/airflow/auth /opt/airflow/sut_image \
 && chmod 0770 /opt/airflow/auth
USER airflow

COPY --chown=airflow:0 requirements.txt constraints.txt /opt/mlperf/
# apache-airflow is named explicitly so pip can never up- or downgrade the Airflow the image was built for.
# --no-cache-dir keeps pip's download cache out of the layer.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
      -r /opt/mlperf/requirements.txt -c /opt/mlperf/constraints.txt

# The repository root's layout under /opt/airflow: `import include...` works in DAGs, tasks and plugins.
ENV PYTHONPATH=/opt/airflow
