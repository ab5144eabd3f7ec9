import sys

from kws.app.cli import main  # cli imports no numpy; main() limits the BLAS threads first

sys.exit(main())
