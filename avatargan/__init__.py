"""avatargan: a GAN avatar generator from NumPy training to a verified ECP5 design.

The command-line entry point is :func:`avatargan.cli.main`; each subcommand lives in its own
module under :mod:`avatargan.commands`.
"""

__version__ = "0.1.0"
