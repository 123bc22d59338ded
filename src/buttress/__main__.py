"""``python -m buttress`` runs the command line."""

import sys

from buttress.cli import main

sys.exit(main())
