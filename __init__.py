"""AudioToken for ComfyUI: turn a sound into tokens that stand in a CLIP prompt.

ComfyUI loads this folder as a package under a name derived from its path, so everything below is imported
relatively, and only when the host asks for the nodes: importing this file needs neither ComfyUI nor torch.
There is deliberately no NODE_CLASS_MAPPINGS here: ComfyUI would then ignore `comfy_entrypoint`.
"""

# Served at /extensions/<folder>/ and loaded by the frontend: draws the nodes' text results on the nodes.
WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes.extension import AudioTokenExtension

    return AudioTokenExtension()
