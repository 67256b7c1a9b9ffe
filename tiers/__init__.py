"""The carbon-tier component: labels every node with the carbon tier of its region.

``carbon.stellar.org/tier: "0"`` marks the greenest regions' nodes, ``"1"`` the next, and so on,
cut from the same ranking the webhook uses and moved slowly (``shared.scoring.tiers``), so that
the descheduler can move running read replicas to where the grid is cleanest. ``decide`` holds the
pure decisions (which labels to write, what the labels say on start), ``labeller`` the Kubernetes
calls, ``loop`` the cycle, ``app`` the health and metrics site.
"""
