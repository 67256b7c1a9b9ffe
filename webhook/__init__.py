"""Mutating admission webhook: carbon-aware node affinity for Stellar read-pool pods."""
