"""pagebridge benchmarks: scripts that measure and report, never timed tests."""
