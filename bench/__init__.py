"""Benchmarks of stellar-carbon: admission cost, carbon outcome, reporter at scale and growth.

Run with ``python -m bench [--quick] [--only admission,carbon,reporter,growth]``; results go to
``bench/results/latest.json`` and ``bench/results/latest.md``. The method is in
``docs/benchmarks.md``.
"""
