"""bootseed late agent: user-data, cloud-config modules and the ``bootseed`` CLI."""

from bootseed.contract import __version__ as __version__  # the one version: contract
