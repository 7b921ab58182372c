"""`python -m hrpose` (and `torchrun -m hrpose`) runs the CLI."""

from .cli import main

raise SystemExit(main())
