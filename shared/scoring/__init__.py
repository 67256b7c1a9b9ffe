"""Pure maths over carbon values: which regions are greenest, and what a node emits."""
