"""The tutorial's own Flask app and Flask-Migrate steps, to make the databases `adopt` takes over.

`make_tutorial_database` runs them as the tutorial's reader would, each step in its own process
(the model is defined at import): create `user_list`, add users, optionally migrate to `email`
and add more users.
"""

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import make_url

from app.migrate.config import PROJECT_ROOT

User = dict[str, str | None]


def flask_url(url: str) -> str:
    """Our async URL as the Flask app's sync drivers spell it (pysqlite, PyMySQL)."""
    parsed = make_url(url)
    driver = "sqlite" if parsed.get_backend_name() == "sqlite" else "mysql+pymysql"
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def make_tutorial_database(
    url: str,
    directory: Path,
    users: Sequence[User],
    *,
    email: bool,
    later_users: Sequence[User] = (),
) -> None:
    """`users` are added at the first revision; with `email`, `later_users` after it."""
    migrations = directory / "migrations"
    _step(url, migrations, "first", users, email=False)
    if email:
        _step(url, migrations, "email", later_users, email=True)


def _step(url: str, migrations: Path, step: str, users: Sequence[User], *, email: bool) -> None:
    env = {
        **os.environ,
        "TUTORIAL_DATABASE_URL": flask_url(url),
        "TUTORIAL_EMAIL": "1" if email else "0",
        "TUTORIAL_USERS": json.dumps(list(users)),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.tutorial_app.build", str(migrations), step],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"the tutorial's {step} step failed:\n{result.stderr}")
