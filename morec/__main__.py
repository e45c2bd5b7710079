"""``python -m morec``: the ``morec`` command."""

import sys

from .cli import main

sys.exit(main())
