"""``python -m morec.runs.suite CONFIG RUN_DIR [--resume]``: one suite run's training child
(:func:`morec.runs.suite.worker.train_child`). Its own module, so the package's import of the
worker does not run it a second time (``runpy`` warns when ``-m`` names a module already imported)."""

import sys

from morec.runs.suite.worker import train_child

sys.exit(train_child(sys.argv[1:]))
