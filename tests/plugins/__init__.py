"""Example plugins for tests (``--plugin plugins.<module>`` with ``tests/`` on ``sys.path``)."""
