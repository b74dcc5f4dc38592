"""A tiny CLIP vision model (random weights) in a folder laid out like a hub checkpoint.

Tests need a CLIP image encoder loadable through the same path users take
(``--weights FOLDER``, read by ``CLIPVisionModel.from_pretrained`` like a hub
id) without any download. :func:`build_tiny_clip` writes one in well under a
second: by default hidden size 32, 2 layers, 32-pixel patches on 64-pixel
images, i.e. 1 + (64 / 32)^2 = 5 output tokens, plus the
``preprocessor_config.json`` a hub folder carries (CLIP's steps at 64 pixels).
``full=True`` writes a whole ``CLIPModel`` (tiny text tower included), the
layout of ``openai/clip-vit-base-patch32`` itself.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPVisionConfig, CLIPVisionModel, ViTConfig, ViTImageProcessor, ViTModel


def tiny_clip_tokens(image_size: int = 64, patch_size: int = 32) -> int:
    """Output tokens of a CLIP ViT: the CLS token and one per patch."""
    return (image_size // patch_size) ** 2 + 1


def build_tiny_clip(
    folder: str | Path,
    *,
    hidden_size: int = 32,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 2,
    intermediate_size: int = 64,
    image_size: int = 64,
    patch_size: int = 32,
    full: bool = False,
    with_preprocessor: bool = True,
    seed: int = 0,
) -> Path:
    """Write a random-weight ``CLIPVisionModel`` (or ``CLIPModel`` with ``full``) into ``folder``; return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vision = dict(
        hidden_size=hidden_size, num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size, image_size=image_size, patch_size=patch_size,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        if full:
            text = dict(hidden_size=hidden_size, num_hidden_layers=1, num_attention_heads=num_attention_heads,
                        intermediate_size=intermediate_size, vocab_size=64, max_position_embeddings=16,
                        pad_token_id=1, bos_token_id=0, eos_token_id=2)
            model: torch.nn.Module = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=hidden_size))
        else:
            model = CLIPVisionModel(CLIPVisionConfig(**vision))
    finally:
        torch.random.set_rng_state(generator_state)
    model.save_pretrained(folder)
    if with_preprocessor:
        CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return folder


def build_tiny_vit(folder: str | Path, *, hidden_size: int = 32, image_size: int = 64, patch_size: int = 32, seed: int = 0) -> Path:
    """Write a random-weight plain ``ViTModel`` (the layout of google/vit-base-patch16-224, tiny) and its
    ``ViTImageProcessor`` settings (a square resize, no crop, mean/std 0.5) into ``folder``; return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = ViTModel(ViTConfig(hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=2, intermediate_size=2 * hidden_size,
                                   image_size=image_size, patch_size=patch_size))
    finally:
        torch.random.set_rng_state(generator_state)
    model.save_pretrained(folder)
    ViTImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return folder


__all__ = ["build_tiny_clip", "build_tiny_vit", "tiny_clip_tokens"]
