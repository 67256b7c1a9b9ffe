"""Carbon intensity data: providers, cache, fallback chain, background refresh, snapshots."""
