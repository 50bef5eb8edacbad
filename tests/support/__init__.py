"""Test-only helpers: real servers on free ports, waiting on conditions, recorded HTTP."""
