"""Toy-world benchmark: evidence, on a CPU in under 20 minutes, that the AudioToken recipe learns.

Run `python -m benchmarks.toyworld --help` from the repository root.
"""
