"""Small pure-Python model packages from PyPI for the port tests: fetched once as the wheel, cached, never committed.

``source_tree(spec)`` gives a directory holding ``spec.package`` made of the wheel's files listed in ``spec.files``,
untouched; only the package's ``__init__.py`` files are filtered: their ``from .x import ...`` (``from . import x``)
statements naming a module left out are dropped, mechanically (``_timm_source._filtered_init``).
``ported_tree(spec)`` is its port by ``python -m jnn.port``, cached for the jnn source that made it
(``_timm_source.port_cached``).

The torch reference imports the same files with torch; neither side needs the package's other dependencies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import pathlib
import sys
import tarfile
import types
import zipfile
from collections.abc import Iterator, Mapping

from _timm_source import CACHE, _cached, _filtered_init, port_cached
from _torchvision_source import download_wheel, import_package


@dataclasses.dataclass(frozen=True)
class Wheel:
    """``package``'s files ``files`` (relative to ``package/``) from the wheel of ``project==version``, or from its
    source archive (``sdist=True``: projects that publish no wheel)."""

    project: str
    version: str
    package: str
    files: tuple[str, ...]
    sdist: bool = False

    def name(self) -> str:
        """The cache entry: one per version and list of files."""
        digest = hashlib.sha256(" ".join(self.files).encode()).hexdigest()[:8]
        return f"{self.package}-{self.version}-subset-{digest}"


# Meta's Segment Anything: the model (image encoder, prompt encoder, mask decoder), build_sam and the resizing
# transforms; predictor.py and automatic_mask_generator.py (numpy and torchvision's nms around the model) left out
SEGMENT_ANYTHING = Wheel("segment-anything", "1.0", "segment_anything", (
    "__init__.py", "build_sam.py", "utils/__init__.py", "utils/transforms.py",
    *[f"modeling/{name}.py" for name in ("__init__", "common", "image_encoder", "mask_decoder", "prompt_encoder",
                                         "sam", "transformer")]))

# open_clip: the CLIP model classes and their losses; the factory (pretrained downloads, tokenizers with ftfy,
# torchvision transforms) and CoCa left out. hf_model.py and timm_model.py are kept since model.py imports them,
# each copes with its optional dependency (transformers, timm) missing.
OPEN_CLIP = Wheel("open_clip_torch", "3.3.0", "open_clip", (
    "__init__.py", "version.py", "constants.py", "model.py", "transformer.py", "loss.py", "utils.py", "pos_embed.py",
    "hf_model.py", "hf_configs.py", "timm_model.py", "modified_resnet.py"))


def source_tree(spec: Wheel) -> pathlib.Path:
    """A directory with ``spec``'s subset of its package (cached)."""
    def fill(tmp: pathlib.Path) -> None:
        stem = f"{spec.project.replace('-', '_')}-{spec.version}"
        archive = download_wheel(spec.project, spec.version, f"{stem}.tar.gz" if spec.sdist else f"{stem}-*.whl")
        for rel, data in _members(archive, [f"{spec.package}/{rel}" for rel in spec.files]):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
        for rel in spec.files:
            if rel.endswith("__init__.py"):
                folder = rel.removesuffix("__init__.py")
                present = {f[len(folder):].split("/")[0].removesuffix(".py") for f in spec.files
                           if f.startswith(folder) and f != rel}
                init = tmp / spec.package / rel
                init.write_text(_filtered_init(init.read_text(), present,
                                               ".".join([spec.package, *folder.strip("/").split("/")]).strip(".")))

    CACHE.mkdir(parents=True, exist_ok=True)
    return _cached(CACHE / spec.name(), f"{spec.package}/{spec.files[-1]}", fill)


def _members(archive: pathlib.Path, names: list[str]):
    """``(name, bytes)`` of each of ``names`` in a wheel, or in a source archive (under its one top folder)."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            yield from ((name, z.read(name)) for name in names)
        return
    with tarfile.open(archive) as tar:
        top = tar.getnames()[0].split("/")[0]
        for name in names:
            yield name, tar.extractfile(f"{top}/{name}").read()


def ported_tree(spec: Wheel) -> pathlib.Path:
    """A directory with ``<package>_jnn``, the port of :func:`source_tree` (see ``_timm_source.port_cached``)."""
    return port_cached(source_tree(spec), spec.package, spec.name(), spec.files[-1])


def imported(spec: Wheel, ported: bool = False) -> types.ModuleType:
    """``spec``'s package imported: its own files with torch, or with ``ported`` its port (``<package>_jnn``)."""
    if ported:
        return import_package(ported_tree(spec), f"{spec.package}_jnn")
    return import_package(source_tree(spec), spec.package)


# Meta's EnCodec: the SEANet encoder/decoder (conv wrappers with weight/spectral norm, LSTM, transformer), the
# residual vector quantizer and EncodecModel; compress.py, binary.py, quantization/ac.py (entropy coding) and
# msstftd.py (the discriminator) left out. utils.py is kept since model.py imports it (it imports torchaudio).
ENCODEC = Wheel("encodec", "0.1.1", "encodec", (
    "__init__.py", "distrib.py", "utils.py", "quantization/__init__.py", "quantization/core_vq.py",
    "quantization/vq.py", *[f"modules/{name}.py" for name in ("__init__", "conv", "norm", "lstm", "seanet",
                                                            "transformer")], "model.py"), sdist=True)

# OpenAI's Whisper (a source archive only): the model (model.py), its decoding (decoding.py: the kv-cache inference,
# greedy/beam decoders, logit filters) and word timing (timing.py), with what they import (audio.py, tokenizer.py,
# transcribe.py, utils.py); the tests stand in for tiktoken and numba, which are not installed. The normalizers,
# triton_ops.py and __main__.py left out.
WHISPER = Wheel("openai-whisper", "20250625", "whisper", (
    "__init__.py", "version.py", "utils.py", "audio.py", "tokenizer.py", "timing.py", "decoding.py", "transcribe.py",
    "model.py"), sdist=True)

# lucidrains' vit-pytorch: einops everywhere (rearrange/repeat/reduce/pack/unpack/einsum in forward, einops'
# Rearrange/Reduce layers in nn.Sequential). ViT (and MAE on it), SimpleViT with register tokens, CaiT, DeepViT,
# CrossViT, MaxViT, ViT with the decorrelation loss; the rest of the package left out.
VIT_PYTORCH = Wheel("vit-pytorch", "1.26.14", "vit_pytorch", (
    "__init__.py", "simple_vit.py", "mae.py", "simple_vit_with_register_tokens.py", "cait.py", "deepvit.py",
    "cross_vit.py", "max_vit.py", "vit_with_decorr.py", "vit.py"))

# Meta's ESM protein language models: ESM-2, ESM-1/ESM-1b (ProteinBertModel) and the MSA Transformer, with their
# layers (rotary embedding, fairseq's multi-head attention, axial attention, the contact head) and the alphabet and
# batch converter of data.py; pretrained.py (hub downloads), esmfold and inverse_folding (other dependencies) left
# out. model/ has no __init__.py in the wheel (a namespace package).
ESM = Wheel("fair-esm", "2.0.0", "esm", (
    "__init__.py", "version.py", "constants.py", "data.py", "rotary_embedding.py", "multihead_attention.py",
    "axial_attention.py", "modules.py", "model/esm1.py", "model/msa_transformer.py", "model/esm2.py"))

# lucidrains' x-transformers: x_transformers.py (TransformerWrapper, Encoder/Decoder, XTransformer, the attention,
# feedforward, norm and positional variants), attend.py and autoregressive_wrapper.py (loss, generate); the other
# wrappers left out. It imports lucidrains' torch-einops-utils (TORCH_EINOPS_UTILS, ported beside it), einx and loguru.
X_TRANSFORMERS = Wheel("x-transformers", "2.31.10", "x_transformers", (
    "__init__.py", "attend.py", "autoregressive_wrapper.py", "x_transformers.py"))

# lucidrains' torch-einops-utils, the torch helpers x-transformers imports (masked means, padding, safe cat, pytree
# helpers, Sequential/Identity, a numerically stable cross entropy); shape.py and save_load.py left out.
TORCH_EINOPS_UTILS = Wheel("torch-einops-utils", "0.2.0", "torch_einops_utils", (
    "__init__.py", "python_utils.py", "torch_einops_utils.py", "nn.py", "device.py", "statistics.py", "math.py",
    "stable_softmax.py"))


@contextlib.contextmanager
def modules_as(modules: Mapping[str, types.ModuleType]) -> Iterator[None]:
    """Inside the block ``import name`` finds ``modules[name]`` (a stand-in for a package that is not installed, or
    a port under the name its users import); ``sys.modules`` is as before afterwards (what was imported inside keeps
    what it imported)."""
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                del sys.modules[name]
            else:
                sys.modules[name] = module

# lucidrains' ema-pytorch, the whole package: EMA (in-place copy_/lerp_ of an EMA copy's parameters and buffers,
# torch._foreach_* too), EMAPytree/EMATensor, KarrasEMA and PostHocEMA (torch.save'd checkpoints, synthesised EMAs)
# and EMAModuleWrapper (forward hooks handing the EMA's outputs to the online model).
EMA_PYTORCH = Wheel("ema-pytorch", "0.8.3", "ema_pytorch", (
    "__init__.py", "ema_pytree_pytorch.py", "ema_pytorch.py", "post_hoc_ema.py", "ema_module_kwargs.py"))

# lucidrains' vector-quantize-pytorch: VectorQuantize (EMA codebooks updated in place, k-means init, dead-code
# expiry), ResidualVQ/GroupedResidualVQ, FSQ, LFQ and LatentQuantize; the other quantizers (and utils.py, which
# imports them all) left out.
VECTOR_QUANTIZE = Wheel("vector-quantize-pytorch", "1.32.0", "vector_quantize_pytorch", (
    "__init__.py", "finite_scalar_quantization.py", "lookup_free_quantization.py", "latent_quantization.py",
    "residual_vq.py", "vector_quantize_pytorch.py"))
