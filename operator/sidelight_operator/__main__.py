"""`python -m sidelight_operator`: the operator in a cluster (see `kube/cli.py`)."""

import sys

from sidelight_operator.kube.cli import main

sys.exit(main())
