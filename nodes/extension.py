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
from .sample_sounds import install_sample_sounds
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
        # Called once, when the host loads the pack (both hosts; on_load is not called by 0.3.64), so the
        # templates' sounds are in the input folder before Load Audio first lists it.
        install_sample_sounds()
        return list(NODES)
