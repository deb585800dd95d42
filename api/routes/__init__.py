"""Route modules, one concern each."""
