"""What only the cyclic GC would free: for tests that an ended connection is freed by refcounting alone."""
from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def cyclic_garbage(*types: type) -> Iterator[list[str]]:
    """Run the block with the cyclic GC off; at its end the yielded list holds the names of the
    objects of `types` that only the GC would have freed (empty: refcounting freed them all)."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list[str] = []
    try:
        yield found
        gc.collect()
        found.extend(type(o).__qualname__ for o in gc.garbage if isinstance(o, types))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
