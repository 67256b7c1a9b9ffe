"""The cluster as the services see it: node and pod values, manifests, the Kubernetes inventory."""
