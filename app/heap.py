"""The served process's heap: keep the garbage collector's full passes short.

A full (generation 2) collection walks every tracked object. After start-up the heap holds
hundreds of thousands of long-lived ones (modules, phone-number metadata, SQLAlchemy and
pydantic schemas, rule packs): a pass over them stalls the event loop for 30-160 ms, which is
the whole p99 of ring -> screen. `gc.freeze()` moves what exists now out of the collector's
sight (it is still freed by reference counting); later passes only walk what came after.
"""

from __future__ import annotations

import gc
import logging

from app.telephony.numbers import normalise

log = logging.getLogger(__name__)


def freeze_startup_heap(region: str) -> None:
    """Load what the first requests would load lazily, then freeze the heap as it is."""
    normalise("+447700900123", None, region)  # loads the phone-number metadata
    normalise("07700 900123", None, region)
    gc.collect()
    gc.freeze()
    # Fewer, and so rarer, passes: a young generation of 50,000 allocations (a few requests'
    # worth) rather than 700; a full pass after 100 middle ones rather than 10.
    gc.set_threshold(50_000, 20, 100)
    log.info("start-up heap frozen", extra={"objects": gc.get_freeze_count()})
