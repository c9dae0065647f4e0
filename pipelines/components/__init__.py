"""Pipeline components, one module each."""
