"""The ``ingestd`` program's entry point (``python -m ingestd`` and the console script).

The collector is off while the command line's modules load and their objects are then
frozen (``gc.freeze``): imports make hundreds of thousands of long-lived objects and
almost no garbage, so collecting during them is wasted work, and at exit the
interpreter no longer sweeps them. Both only cost time: for ``ingestd fetch`` on a warm
1,000-feed configuration they were about 0.09 s of 1.5 s (``bench/run``'s warm row;
measured by timing ``python -c 'import ingestd.pipeline'`` with and without them:
0.33-0.37 s against 0.24-0.25 s). A long-running daemon gains as well: full collections
no longer walk the modules' objects. Tests and library users who call
``ingestd.cli.main`` directly keep the interpreter's defaults.
"""

from __future__ import annotations

import gc


def main() -> int:
    """Load the command line with the collector off, freeze what loaded, run it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        from ingestd.cli.main import main as run
    finally:
        if enabled:
            gc.enable()
    gc.freeze()
    return run()
