"""``python -m kameleon_nb`` runs the ``kameleon`` command."""

import sys

from kameleon_nb.frontends.cli import main

sys.exit(main())
