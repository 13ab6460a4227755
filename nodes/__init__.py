"""ComfyUI V3 nodes of the AudioToken pack.

Never import this package as top-level `nodes`: that name belongs to ComfyUI's own `nodes.py`.
"""
