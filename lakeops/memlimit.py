"""`python -m lakeops.memlimit CMD`: the command saved in work pools; the supervisor is lakeops.healing.memlimit."""

from lakeops.healing.memlimit import main

if __name__ == "__main__":
    raise SystemExit(main())
