"""stopnet: joint customs operations against counterfeit goods sold online."""

import os

__version__ = "0.1.0"

#: Options for polars' memory allocator (jemalloc), set when stopnet is imported before polars and
#: ``_RJEM_MALLOC_CONF`` is not already set: freed pages stay with the process for up to 60 s before
#: they go back to the operating system (jemalloc's default starts returning them at once). Batch work
#: that allocates the same large buffers chunk after chunk (scoring, imports, reports) then reuses
#: pages instead of having the kernel zero fresh ones each time, which cuts the system time of the
#: scoring benchmark (figures: docs/benchmarks.md). Memory is still returned once idle.
POLARS_ALLOCATOR_CONF = "dirty_decay_ms:60000,muzzy_decay_ms:60000"

os.environ.setdefault("_RJEM_MALLOC_CONF", POLARS_ALLOCATOR_CONF)
