#!/usr/bin/env bash
# Airflow in its own virtual environment (.venv-airflow), apart from the services'
# .venv, so Airflow's dependency pins never meet the services' pins. Used by the
# DAG tests (tests/test_airflow_dags.py) and by anyone who wants to load the DAGs
# locally. Skips the install when the venv already has the pinned version.
set -euo pipefail
cd "$(dirname "$0")/.."

AIRFLOW_VERSION=$(sed -n 's/^apache-airflow==//p' airflow/requirements-airflow.txt)
VENV=${AIRFLOW_VENV:-.venv-airflow}
PYTHON=${PYTHON:-python3}

if [ -x "$VENV/bin/python" ] && [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("apache-airflow"))' 2>/dev/null)" = "$AIRFLOW_VERSION" ]; then
  exit 0
fi
start=$(date +%s)
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r airflow/requirements-airflow.txt
echo "installed apache-airflow $AIRFLOW_VERSION into $VENV in $(( $(date +%s) - start ))s" >&2
