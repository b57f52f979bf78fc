"""``python -m repair`` runs the command line."""

from repair.cli import main

raise SystemExit(main())
