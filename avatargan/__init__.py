"""avatargan: a GAN avatar generator from NumPy training to a verified ECP5 design.

The command-line entry point is :func:`avatargan.cli.main`; each subcommand lives in its own
module under :mod:`avatargan.commands`.
"""

from base import __version__  # one version for the CLI and the model files it writes

__all__ = ["__version__"]
