"""The library's vocabulary: plain values, time, errors, secrets and small asyncio building blocks.

Everything else in ``shared`` builds on these; they import nothing else of the product.
"""
