"""`python -m legion_core.cli ...` runs `legion ...` (child processes started with this interpreter, e.g.
the regression check's recorder and the record bench's publisher)."""

import sys

from legion_core.cli import main

sys.exit(main())
