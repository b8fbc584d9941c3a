"""One module per ``bootseed`` subcommand.

Each module defines ``NAME`` (the verb), ``HELP`` (one line), ``add_arguments(parser)``
to add its arguments and ``run(args) -> int``. Heavy imports belong inside
``run`` so that starting one verb never pays for another.
"""
