"""One module per ``avatargan`` subcommand; see :mod:`avatargan.cli` for the contract."""
