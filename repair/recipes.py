"""Training recipes (chapter 03): which networks, which losses, which optimiser settings.

Recipes are small frozen dataclasses (:data:`RECIPES`):

* ``paper``: the student paper's section II.D exactly - its own networks (softmax discriminator),
  Adam lr 1e-4, betas (0.5, 0.999), batch 4, BCE-with-logits adversarial loss + L1 (weight 1),
  10 epochs, the generator stepped before the discriminator, D's loss the mean of its real and fake
  losses, the best epoch chosen by validation loss;
* ``pix2pix``: U-Net + conditional PatchGAN, L1 weight 100, Adam lr 2e-4, betas (0.5, 0.999),
  D stepped first (Isola et al. 2017), best epoch by validation PSNR; batch 4 like the paper's
  recipe, so both take the same number of steps for the same images (pix2pix itself used 1-10);
* ablations ``l1`` (the U-Net with the L1 loss only, no discriminator) and ``paper-logit`` (the
  paper's networks with the discriminator's head fixed: one raw logit);
* ``restorer``: the restorer of record (:mod:`repair.nafnet`), no discriminator, trained by
  steps rather than epochs on damage drawn afresh every step (:mod:`repair.restorer_train`).

:mod:`repair.train` runs them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["Recipe", "RECIPES", "get_recipe", "widths", "build_nets", "make_optimizers"]


@dataclass(frozen=True)
class Recipe:
    """One training recipe: which networks, which losses, which optimiser settings.

    Network widths and the crop size come from the profile (:class:`repair.config.Config`);
    ``max_width`` caps the widths (:func:`widths`).
    """

    name: str
    generator: str = "paper-generator"  # "paper-generator" or "unet"
    discriminator: str | None = "paper-discriminator"  # None: no adversarial loss (L1 only)
    d_head: str = "softmax"  # paper discriminator head: "softmax" (paper) or "logit" (fix)
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    batch_size: int = 4
    num_epochs: int = 10
    l1_weight: float = 1.0
    adv_weight: float = 1.0
    g_first: bool = True  # paper: G steps, then D on the same fake; pix2pix: D first
    best_by: str = "val_loss"  # "val_loss" (lower is better) or "val_psnr" (higher is better)
    unet_depth: int = 4
    max_width: int | None = None  # cap on ngf/ndf (the paper's networks: 32, its Figs. 3-4)
    description: str = ""
    optimizer: str = "adam"  # "adam" or "adamw" (weight decay 0: Adam with decoupled decay)
    mask_weight: float = 0.0  # weight of the damage-mask BCE (networks with a mask head)
    mask_pos_weight: float = 1.0  # how much more a missed damaged pixel costs than a false alarm
    sharpen_branch: bool = False  # restorer: global unsharp-mask branch (repair.nafnet)


RECIPES: dict[str, Recipe] = {
    "paper": Recipe(
        "paper", max_width=32,
        description="the paper's networks and section II.D exactly (softmax head fed to "
        "BCEWithLogitsLoss, L1 weight 1, Adam 1e-4, batch 4, 10 epochs, G before D)"),
    "paper-logit": Recipe(
        "paper-logit", d_head="logit", max_width=32,
        description="the paper's recipe with the discriminator's head fixed: one raw logit for "
        "BCEWithLogitsLoss"),
    "pix2pix": Recipe(
        "pix2pix", generator="unet", discriminator="patch", lr=2e-4, batch_size=4, num_epochs=10,
        l1_weight=100.0, g_first=False, best_by="val_psnr",
        description="U-Net + conditional 70x70 PatchGAN, L1 weight 100, Adam 2e-4 (pix2pix)"),
    "l1": Recipe(
        "l1", generator="unet", discriminator=None, lr=2e-4, batch_size=4, num_epochs=10,
        l1_weight=1.0, best_by="val_psnr", description="the U-Net with the L1 loss only"),
    "restorer": Recipe(
        "restorer", generator="nafnet", discriminator=None, optimizer="adamw", lr=1e-3,
        betas=(0.9, 0.9), batch_size=8, num_epochs=1, l1_weight=1.0, mask_weight=0.1,
        mask_pos_weight=3.0, best_by="val_psnr", max_width=16,
        description="the restorer of record: mask-guided NAFNet (identity at start, global "
        "residual, gain/offset branch), L1 + 0.1 x mask BCE (a missed damaged pixel costs 3x a "
        "false alarm), AdamW 1e-3 betas (0.9, 0.9) with warm-up and cosine decay, damage drawn "
        "afresh every step (repair.synth), 128x128 crops then 256x256"),
}


def get_recipe(name: str | Recipe, **changes: Any) -> Recipe:
    """A recipe by name (``paper``, ``paper-logit``, ``pix2pix``, ``l1``, ``restorer``), with
    fields changed."""
    if isinstance(name, Recipe):
        return dataclasses.replace(name, **changes) if changes else name
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}")
    return dataclasses.replace(RECIPES[name], **changes) if changes else RECIPES[name]


def widths(recipe: Recipe, ngf: int, ndf: int) -> tuple[int, int]:
    """The profile's ``(ngf, ndf)``, capped by the recipe (the paper's nets are at most 32 wide)."""
    cap = recipe.max_width
    return (ngf, ndf) if cap is None else (min(ngf, cap), min(ndf, cap))


def build_nets(recipe: Recipe, ngf: int, ndf: int, image_size: int,
               device: str | torch.device = "cpu", seed: int = 0
               ) -> tuple[nn.Module, nn.Module | None]:
    """``(net_G, net_D)`` of a recipe (``net_D`` None for L1 only), seeded, on ``device``."""
    from repair.nets import build_discriminator, build_generator

    torch.manual_seed(seed)
    if recipe.generator == "unet":
        net_G = build_generator("unet", ngf=ngf, depth=recipe.unet_depth)
    elif recipe.generator == "nafnet":
        extra = {"sharpen_branch": True} if recipe.sharpen_branch else {}
        net_G = build_generator("nafnet", width=ngf, mask_width=max(ngf // 2, 4), **extra)
    else:
        net_G = build_generator(recipe.generator, ngf=ngf)
    net_D = None
    if recipe.discriminator == "paper-discriminator":
        net_D = build_discriminator("paper-discriminator", ndf=ndf, image_size=image_size,
                                    head=recipe.d_head)
    elif recipe.discriminator is not None:
        net_D = build_discriminator(recipe.discriminator, ndf=ndf)
    memory = torch.channels_last if torch.device(device).type == "cuda" else torch.preserve_format
    net_G = net_G.to(device, memory_format=memory)
    return net_G, (net_D.to(device, memory_format=memory) if net_D is not None else None)


def make_optimizers(recipe: Recipe, net_G: nn.Module, net_D: nn.Module | None
                    ) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer | None]:
    """Adam (or AdamW) for each network with the recipe's learning rate and betas."""
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(recipe.optimizer)
    if kind is None:
        raise ValueError(f"unknown optimizer {recipe.optimizer!r}: use 'adam' or 'adamw'")
    extra = {"weight_decay": 0.0} if recipe.optimizer == "adamw" else {}
    opt_G = kind(net_G.parameters(), lr=recipe.lr, betas=recipe.betas, **extra)
    opt_D = torch.optim.Adam(net_D.parameters(), lr=recipe.lr, betas=recipe.betas) \
        if net_D is not None else None
    return opt_G, opt_D
