"""Run the project's command-line tools (alembic) as a user would, in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

from tests.backends import PROJECT_ROOT


def run_alembic(
    database_url: str, *args: str, cwd: Path = PROJECT_ROOT, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`alembic <args>` with DATABASE_URL set, exactly as the README tells users to run it."""
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"alembic {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result
