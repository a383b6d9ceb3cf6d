"""`python -m tests.support.tutorial_app.build DIR first|email`: one step of the tutorial.

`first` is `flask db init`, `flask db migrate`, `flask db upgrade` on the model without email;
`email` is `flask db migrate -m "add email"` and `flask db upgrade` after the model gained it.
Then the users in TUTORIAL_USERS (JSON) are added through the app's session, plaintext.
"""

import json
import os
import sys
from pathlib import Path

from flask_migrate import init, migrate, upgrade

from tests.support.tutorial_app.app import User, app, db


def main(directory: Path, step: str) -> None:
    with app.app_context():
        if step == "first":
            init(directory=str(directory))
            migrate(directory=str(directory), message="create user_list")
        else:
            migrate(directory=str(directory), message="add email")
        upgrade(directory=str(directory))
        for user in json.loads(os.environ.get("TUTORIAL_USERS", "[]")):
            db.session.add(User(**user))
        db.session.commit()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
