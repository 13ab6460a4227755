"""Every family behind the one interface (train/families/interface.py): each family file exports `PIPELINES` and
`load` with the one signature, each family class derives from `Family` with nothing left abstract, each loaded
tiny family holds the declared data, and each family's heads are the host's embedding keys with the widths of
`meta.HOST_KEY_WIDTHS`."""

import importlib
import inspect

import pytest
from factories.train_world import get_world, with_flow_families

from testkit.flow import FAMILIES

pytestmark = pytest.mark.usefixtures("one_thread")

VARIANTS = ("sd1", "sd2", "sdxl", *FAMILIES)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return with_flow_families(get_world(tmp_path_factory.getbasetemp() / "train_world", ("sd1", "sd2", "sdxl")))


def _modules():
    from train.families import FAMILY_FILES

    return [importlib.import_module(f"train.families.{name}") for name in FAMILY_FILES]


def _family_classes(module):
    from train.families.interface import Family

    return [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, Family)
            and c.__module__ == module.__name__ and not inspect.isabstract(c)]


def test_every_family_file_exports_pipelines_and_the_one_load():
    from train.families.interface import FamilyModule

    wanted = [(p.name, p.default) for p in list(inspect.signature(FamilyModule.load).parameters.values())[1:]]
    assert wanted == [("path", inspect.Parameter.empty), ("dtype", None), ("config", None)]
    pipelines = []
    for module in _modules():
        assert [(p.name, p.default) for p in inspect.signature(module.load).parameters.values()] == wanted, module
        assert module.PIPELINES and all(isinstance(p, str) for p in module.PIPELINES)
        assert _family_classes(module), f"{module.__name__} defines no concrete Family"
        pipelines += module.PIPELINES
    assert len(pipelines) == len(set(pipelines))  # one family per pipeline


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_family_meets_the_interface(variant, world):
    from audiotoken_core.embedder.meta import head_name
    from train.families.interface import Family
    from train.models import load_base_model

    base = load_base_model(world[variant])
    assert isinstance(base, Family) and base.kind == variant
    assert [n for n in Family.__annotations__ if not hasattr(base, n)] == []
    assert list(base.widths) == list(base.heads)
    # its heads are among the host keys its class names (checked against the table below)
    assert set(base.heads) <= {head_name(k) for k in type(base).host_keys}
    assert not any(p.requires_grad for m in base.frozen_modules() for p in m.parameters())
    assert base.denoiser in base.step_modules() and base.vae in base.frozen_modules()
    # the trainer's LoRA and compile ask the family: only the UNet families take them
    assert base.supports_lora == base.supports_compile == (variant in ("sd1", "sd2", "sdxl"))


def test_a_flow_family_refuses_a_single_file(world, tmp_path):
    from train.models import load_base_model

    single = tmp_path / "flux.safetensors"
    single.write_bytes(b"")
    with pytest.raises(ValueError, match="single file; FluxPipeline loads from a diffusers folder"):
        load_base_model(single, world["flux"])


def test_every_familys_heads_are_host_keys_with_the_tables_widths():
    from audiotoken_core.embedder.meta import HOST_KEY_WIDTHS, head_name

    classes = [c for module in _modules() for c in _family_classes(module)]
    assert {c.__name__ for c in classes} == {"BaseModel", "Flux", "SD3", "QwenImage", "ZImage", "Flux2Klein", "Flux2"}
    for cls in classes:
        assert cls.host_keys and set(cls.host_keys) <= set(HOST_KEY_WIDTHS), cls
        # a full-size encoder, as wide as the table says, gets that key's head
        assert [cls.head_for(HOST_KEY_WIDTHS[k]) for k in cls.host_keys] == [head_name(k) for k in cls.host_keys]
