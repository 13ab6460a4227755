"""The ComfyExtension that lists the pack's nodes; imported only when ComfyUI calls `comfy_entrypoint`."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from . import host_compat
from .blend import AudioTokenBlend
from .describe import AudioTokenDescribe
from .download_models import AudioTokenDownloadModels
from .encode import AudioTokenEncode
from .folders import register_folders
from .model_loader import AudioTokenModelLoader
from .save_embedding import AudioTokenSaveEmbedding
from .schedule import AudioTokenSchedule
from .text_encode import AudioTokenTextEncode

# Once, at load: a host that changed what the pack relies on is named in one log line, not mid-prompt.
if "model folders" not in host_compat.check_host():
    # Before any define_schema() lists models/audiotoken; on_load() is never called by ComfyUI 0.3.64.
    register_folders()

NODES = [AudioTokenModelLoader, AudioTokenEncode, AudioTokenTextEncode, AudioTokenSaveEmbedding, AudioTokenBlend,
         AudioTokenSchedule, AudioTokenDescribe, AudioTokenDownloadModels]


class AudioTokenExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)
