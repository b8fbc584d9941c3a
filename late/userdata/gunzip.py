"""Bounded gzip decompression: a gzip bomb stops at the byte budget, never at memory."""

from __future__ import annotations

import zlib

from bootseed.late.userdata.budget import Budget, BudgetExceeded

_CHUNK = 1 << 20


class GunzipError(ValueError):
    pass


def gunzip(data: bytes, budget: Budget) -> bytes:
    """Decompress every gzip member in ``data``, charging the output to ``budget``.

    Raises ``GunzipError`` for corrupt or truncated input and ``BudgetExceeded``
    as soon as the output would pass the cap; at most one chunk beyond the
    remaining budget is ever held in memory.
    """
    out: list[bytes] = []
    pending = data
    produced = 0
    while True:
        inflater = zlib.decompressobj(wbits=31)
        try:
            chunk = inflater.decompress(pending, _CHUNK)
            while True:
                if chunk:
                    produced += len(chunk)
                    if produced > budget.remaining:
                        raise BudgetExceeded(
                            f"gzip data expands beyond the remaining size budget of "
                            f"{budget.remaining} bytes (cap {budget.limit})"
                        )
                    out.append(chunk)
                if inflater.eof or not inflater.unconsumed_tail:
                    break
                chunk = inflater.decompress(inflater.unconsumed_tail, _CHUNK)
            if not inflater.eof:
                tail = inflater.flush()
                if tail:
                    produced += len(tail)
                    if produced > budget.remaining:
                        raise BudgetExceeded(
                            f"gzip data expands beyond the remaining size budget of "
                            f"{budget.remaining} bytes (cap {budget.limit})"
                        )
                    out.append(tail)
                raise GunzipError("gzip data is truncated")
        except zlib.error as exc:
            raise GunzipError(f"corrupt gzip data: {exc}") from None
        pending = inflater.unused_data
        # Concatenated members are legal gzip; trailing NUL padding is common on discs.
        if not pending or not pending.strip(b"\x00"):
            break
        if pending[:2] != b"\x1f\x8b":
            raise GunzipError(f"{len(pending)} bytes of trailing garbage after gzip data")
    budget.charge(produced)
    return b"".join(out)
