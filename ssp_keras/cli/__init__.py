"""The ``ssp-net`` command line: one module per subcommand, assembled by ``main.py``."""
