"""PID 1 of a stand-in container: runs the command given, passes SIGTERM/SIGINT on
and exits with its status.

A process that is PID 1 in a container ignores SIGTERM unless it installs a handler,
so `docker compose stop/restart` would otherwise wait out the grace period and kill
the server (an unclean stop the real images do not have).
"""

import signal
import subprocess
import sys

if __name__ == "__main__":
    child = subprocess.Popen(sys.argv[1:])
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
    code = child.wait()
    sys.exit(128 - code if code < 0 else code)
