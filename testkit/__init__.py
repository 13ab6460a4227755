"""Test support: tiny random models written in the real file formats (BEATs checkpoints in the official layout,
diffusers folders of every family, a single-file SD1.5 checkpoint ComfyUI detects), the full-size random BEATs and
Embedder the benchmarks time, and ComfyUI in this process. For tests, benchmarks and scripts run from the clone,
which must never touch a model hub. Never installed or shipped (pyproject's package list, .comfyignore): nothing
in the product imports it."""
