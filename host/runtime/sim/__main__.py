"""``python -m host.runtime.sim``: one demo layer end to end (see :func:`main`)."""

import sys

from host.runtime.sim import main

sys.exit(main())
