import sys

from . import limit_blas_threads

limit_blas_threads()   # before anything imports numpy

from .cli import main  # noqa: E402

sys.exit(main())
