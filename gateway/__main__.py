"""`python -m gateway`: the command line (`gateway.cli.main`)."""

from gateway.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
