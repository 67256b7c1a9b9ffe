"""The sustainability reporter: regional carbon data, forecasts, node footprints and savings.

An aiohttp service on port 9090 under ``/api/v1/sustainability/``. Every answer is computed from
in-memory state (the latest ``CarbonSnapshot`` and the cluster inventory); providers are only ever
called by the background refresher.
"""
