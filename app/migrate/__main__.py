"""Entry point of `python -m app.migrate`."""

import sys

from app.migrate.cli import main

sys.exit(main())
