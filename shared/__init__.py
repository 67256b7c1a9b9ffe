"""stellar-carbon's carbon library: providers, region catalog, cache, ranking and footprints.

Both services (``webhook`` and ``reporter``) read carbon data only through this package; it imports
neither of them.
"""
