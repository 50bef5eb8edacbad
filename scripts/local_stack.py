"""Run the whole system as processes on local stand-in servers (no Docker).

    .venv/bin/python scripts/local_stack.py [--flask-port 5000] [--poll-interval 2]

See tests/support/local_stack.py for what it starts.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.local_stack import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
