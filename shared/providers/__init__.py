"""Carbon-intensity providers. Each one speaks one upstream API and returns ``shared.models`` values."""
