"""Run by the Airflow virtual environment's python (never by the services' .venv):
load the DAG folder as Airflow's DAG processor does and print what the tests check,
as one JSON document on the last line of stdout.

    .venv-airflow/bin/python tests/support/airflow_probe.py airflow/dags [RUN_AFTER_ISO]
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

from airflow.dag_processing.dagbag import BundleDagBag
from airflow.serialization.serialized_objects import DagSerialization


def main() -> None:
    folder = Path(sys.argv[1]).resolve()
    # The DAG processor's view: the dags folder is the bundle and is on sys.path.
    bag = BundleDagBag(folder, bundle_path=folder, bundle_name="dags-folder")
    out: dict = {"import_errors": {str(k): v for k, v in bag.import_errors.items()}, "dags": {}}
    for dag_id, dag in sorted(bag.dags.items()):
        DagSerialization.to_dict(dag)  # what the processor stores; raises on anything unserialisable
        out["dags"][dag_id] = {
            "fileloc": Path(dag.fileloc).name,
            "timetable": type(dag.timetable).__name__,
            "cron": getattr(dag.timetable, "expression", None),
            "timezone": str(getattr(dag.timetable, "timezone", None)),
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "tasks": {
                t.task_id: {"retries": t.retries, "upstream": sorted(t.upstream_task_ids),
                            "operator": type(t).__name__, "bash_command": getattr(t, "bash_command", None)}
                for t in dag.tasks
            },
        }
    if len(sys.argv) > 2 and "daily_batch" in bag.dags:
        # Render and run the batch DAG's first task as a scheduled run at RUN_AFTER would.
        task = bag.dags["daily_batch"].get_task("market_day")
        run_after = datetime.fromisoformat(sys.argv[2])
        cmd = task.render_template(task.bash_command, {"dag_run": SimpleNamespace(run_after=run_after)})
        proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
        out["market_day"] = {"returncode": proc.returncode, "stdout": proc.stdout.strip(),
                             "stderr": proc.stderr[-2000:]}
        nxt = bag.dags["daily_batch"].get_task("daily_aggregation")
        out["daily_aggregation_rendered"] = nxt.render_template(
            nxt.bash_command, {"ti": SimpleNamespace(xcom_pull=lambda task_ids: f"<{task_ids}>")})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
