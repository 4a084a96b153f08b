"""The test harness, not installed with cachenet: the real components the tests, the
benchmarks and the demonstration (``python -m harness.demo``) build on."""
