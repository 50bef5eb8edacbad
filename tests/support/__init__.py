"""Test-only helpers: recorded HTTP answers, a fake clock, test-only servers (S3, a
private MariaDB) and reading back what a pipeline did. The stand-in servers and
the process runner are product tools in scripts/ (the local stack uses them too).

Server and role logs go with the test artifacts: scripts/servers.py reads
LOCAL_STACK_LOG_DIR when first imported, and conftest imports this package first.
"""

import os
from pathlib import Path

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
os.environ.setdefault("LOCAL_STACK_LOG_DIR", str(ARTIFACTS / "servers"))
