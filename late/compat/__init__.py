"""``cloud-init``: the command cloud-init's users and tools call, answered by bootseed.

Each verb maps onto bootseed's own (``status``, ``query``, ``clean``,
``analyze``, ``schema``, ``run``) or reads what the agent wrote; verbs bootseed
has no equivalent for say so in one line and exit 1. The mapping and the
remaining differences are in ``docs/moving-from-cloud-init.md``.
"""
