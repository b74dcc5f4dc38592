"""Unsupervised mapping by adversarial training (Conneau et al. 2018, section 2.1).

A discriminator learns to tell mapped source vectors from target vectors among
the most frequent words; the linear mapping learns to fool it and is pulled
back towards orthogonality after every step. After each epoch MUSE's
unsupervised criterion is computed and the best mapping is kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from xlingual.embeddings.evaluate import mean_cosine_criterion
from xlingual.embeddings.procrustes import orthogonalize
from xlingual.progress import progress_bar

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdversarialOptions:
    """MUSE's defaults (``unsupervised.py``)."""

    epochs: int = 5
    epoch_size: int = 1_000_000
    batch_size: int = 32
    most_frequent: int = 75_000
    dis_layers: int = 2
    dis_hidden: int = 2048
    dis_dropout: float = 0.0
    dis_input_dropout: float = 0.1
    dis_steps: int = 5
    dis_lr: float = 0.1
    map_lr: float = 0.1
    lr_decay: float = 0.98
    lr_shrink: float = 0.5
    min_lr: float = 1e-6
    smooth: float = 0.1
    map_beta: float = 0.001
    dis_clip: float = 0.0
    seed: int = 0


def build_discriminator(dim: int, options: AdversarialOptions) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Dropout(options.dis_input_dropout)]
    width = dim
    for _ in range(options.dis_layers):
        layers += [nn.Linear(width, options.dis_hidden), nn.LeakyReLU(0.2), nn.Dropout(options.dis_dropout)]
        width = options.dis_hidden
    layers += [nn.Linear(width, 1)]
    return nn.Sequential(*layers)


@dataclass
class AdversarialResult:
    mapping: torch.Tensor
    criterion: float
    initial_criterion: float
    history: list[float]


def adversarial_mapping(src: torch.Tensor, tgt: torch.Tensor, options: AdversarialOptions | None = None) -> AdversarialResult:
    """Learn W (``src @ W.T`` lands in the target space) without any dictionary."""
    options = options or AdversarialOptions()
    generator = torch.Generator().manual_seed(options.seed)
    torch.manual_seed(options.seed)
    device, dim = src.device, src.shape[1]
    mapping = nn.Linear(dim, dim, bias=False).to(device)
    with torch.no_grad():
        mapping.weight.copy_(torch.eye(dim, device=device))
    discriminator = build_discriminator(dim, options).to(device)
    dis_optim = torch.optim.SGD(discriminator.parameters(), lr=options.dis_lr)
    map_optim = torch.optim.SGD(mapping.parameters(), lr=options.map_lr)
    loss_fn = nn.BCEWithLogitsLoss()
    n_src = min(options.most_frequent, src.shape[0])
    n_tgt = min(options.most_frequent, tgt.shape[0])
    batch = options.batch_size
    labels = torch.cat([torch.full((batch,), 1 - options.smooth), torch.full((batch,), options.smooth)]).to(device)

    def sample() -> torch.Tensor:
        src_ids = torch.randint(n_src, (batch,), generator=generator).to(device)
        tgt_ids = torch.randint(n_tgt, (batch,), generator=generator).to(device)
        return src_ids, tgt_ids

    initial = mean_cosine_criterion(src, tgt)
    best, best_weight, history = initial, mapping.weight.detach().clone(), []
    logger.info("adversarial training: criterion at start %.4f", initial)
    iterations = max(1, options.epoch_size // batch)
    for epoch in range(options.epochs):
        for _ in progress_bar(range(iterations), desc=f"adversarial epoch {epoch + 1}/{options.epochs}", unit="it", leave=False):
            discriminator.train()
            for _ in range(options.dis_steps):
                src_ids, tgt_ids = sample()
                with torch.no_grad():
                    x = torch.cat([mapping(src[src_ids]), tgt[tgt_ids]])
                loss = loss_fn(discriminator(x).squeeze(1), labels)
                dis_optim.zero_grad()
                loss.backward()
                if options.dis_clip > 0:
                    for p in discriminator.parameters():
                        p.data.clamp_(-options.dis_clip, options.dis_clip)
                dis_optim.step()
            # As MUSE's mapping_step: the mapping is trained against the discriminator without its dropout.
            discriminator.eval()
            src_ids, tgt_ids = sample()
            x = torch.cat([mapping(src[src_ids]), tgt[tgt_ids]])
            loss = loss_fn(discriminator(x).squeeze(1), 1 - labels)
            map_optim.zero_grad()
            loss.backward()
            map_optim.step()
            with torch.no_grad():
                mapping.weight.copy_(orthogonalize(mapping.weight, options.map_beta))
        with torch.no_grad():
            score = mean_cosine_criterion(mapping(src), tgt)
        history.append(score)
        logger.info("adversarial epoch %d: criterion %.4f (best %.4f)", epoch + 1, score, best)
        if score > best:
            best, best_weight = score, mapping.weight.detach().clone()
        elif epoch > 0:
            for group in map_optim.param_groups:
                group["lr"] = max(options.min_lr, group["lr"] * options.lr_shrink)
        # MUSE's update_lr decays the mapping's learning rate only; the discriminator keeps dis_lr.
        for group in map_optim.param_groups:
            group["lr"] = max(options.min_lr, group["lr"] * options.lr_decay)
    return AdversarialResult(best_weight, best, initial, history)
