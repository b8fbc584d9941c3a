"""bootseed late agent: user-data, cloud-config modules and the ``bootseed`` CLI."""

__version__ = "0.1.0"
