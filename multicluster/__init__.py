"""The Karmada carbon controller: weighs the replicas of Karmada propagation policies by carbon.

For every PropagationPolicy and ClusterPropagationPolicy that opts in (annotation
``stellar.org/carbon-aware: "enabled"``) and divides its replicas by static weights, it writes a
``staticWeightList`` whose weights follow the expected carbon intensity of each member cluster's
region, greenest highest, with the webhook's carbon library (providers, cache, fallback chain,
ranking). ``members`` maps clusters to regions, ``placement`` reads what a policy allows,
``weights`` and ``decide`` are the pure decisions, ``policies`` the apply body; ``karmada`` talks
to the Karmada API server, ``lease`` elects one leader, ``loop`` runs the cycle and ``app`` serves
health and metrics.
"""
