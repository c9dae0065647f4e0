"""On-demand benchmarks and the accuracy-versus-FLOPs sweep (not part of the test suite)."""
