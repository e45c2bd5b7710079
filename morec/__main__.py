"""``python -m morec``: the ``morec`` command."""

import sys

from morec.cli import main

sys.exit(main())
