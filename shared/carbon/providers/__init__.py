"""Carbon-intensity providers: each speaks one upstream API and returns ``shared`` values."""
