"""Where a cloud region draws its power from: the region catalog, the GSF dataset and overrides."""
