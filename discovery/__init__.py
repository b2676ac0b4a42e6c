"""discovery: e-discovery search for exported internal chat.

The library comes first; the CLI (discovery.cli) and the web UI (discovery.web) are thin layers.
"""

__version__ = "0.1.0"
