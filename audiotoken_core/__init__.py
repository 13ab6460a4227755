"""Host-independent AudioToken library: audio preparation, BEATs, the Embedder and the audio→token pipeline.

Plain torch: nothing here imports ComfyUI or diffusers, so the ComfyUI nodes and the trainer share it.
"""

__version__ = "0.1.0"
