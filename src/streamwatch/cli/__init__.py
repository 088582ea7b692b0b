"""The command line (``streamwatch``), split by command group.

May import: every package.
"""
