"""``python -m layerinf.book``: see `layerinf.book.cli`."""

import sys

from layerinf.book.cli import main

sys.exit(main())
