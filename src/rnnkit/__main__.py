"""``python -m rnnkit`` (also what ``torchrun -m rnnkit`` runs)."""

import sys

from .cli import main

sys.exit(main())
