"""Tiny random models written in the real file formats: BEATs checkpoints (official layout), diffusers Stable
Diffusion folders, and a single-file SD1.5 checkpoint ComfyUI detects. For tests, benchmarks' dry runs and
scripts that must never touch a model hub; nothing here is loaded by the nodes or the trainer themselves."""
