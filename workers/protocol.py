"""What the warm worker and its interpreters say to each other (kept apart so neither imports the other)."""

READY_LINE = "lakeops-warm: ready"  # the interpreter's first line on stdout once it has imported everything
IMPORTS_ENV = "LAKEOPS_WARM_IMPORTS"  # packages whose every module an idle interpreter imports
