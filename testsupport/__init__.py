"""Helpers the tests and the benchmarks share, on purpose: fake target roots, a shell
root to chroot into, a planted seed cache and an in-process agent run.

Not installed (``setup.cfg`` lists bootseed's packages only); ``tests/`` and ``bench/``
import it from the source tree.
"""
