"""``python -m layerinf``: the ``layerinf`` command line (`layerinf.cli`), e.g. for an installed copy."""

import sys

from layerinf.cli import main

sys.exit(main())
