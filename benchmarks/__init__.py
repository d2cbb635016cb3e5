"""Benchmarks and demos: `python -m benchmarks` compares the engine with hand-written NumPy."""
