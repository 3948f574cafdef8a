"""``python -m sklearn_budget``: same as the ``sklearn-budget`` command."""

import sys

from .cli import main

sys.exit(main())
