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
from xlingual.embeddings.options import AdversarialOptions
from xlingual.embeddings.procrustes import orthogonalize
from xlingual.progress import progress_bar

logger = logging.getLogger(__name__)


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


class _AdversarialTrainer:
    """The two players and their optimisers, with one method per move as MUSE's trainer has them.

    :meth:`discriminator_step` teaches the discriminator to tell mapped source
    vectors from target vectors, :meth:`mapping_step` moves the mapping to fool
    it (then back towards orthogonality), and :meth:`update_lr` changes the
    mapping's learning rate after an epoch. Every random draw goes through
    :meth:`sample` (the batch's word ids, from ``generator``) or the global
    torch RNG (dropout), in the same order on every run with the same seed.
    """

    def __init__(self, src: torch.Tensor, tgt: torch.Tensor, options: AdversarialOptions) -> None:
        self.src, self.tgt, self.options = src, tgt, options
        self.generator = torch.Generator().manual_seed(options.seed)
        torch.manual_seed(options.seed)
        device, dim = src.device, src.shape[1]
        self.device = device
        self.mapping = nn.Linear(dim, dim, bias=False).to(device)
        with torch.no_grad():
            self.mapping.weight.copy_(torch.eye(dim, device=device))
        self.discriminator = build_discriminator(dim, options).to(device)
        self.dis_optim = torch.optim.SGD(self.discriminator.parameters(), lr=options.dis_lr)
        self.map_optim = torch.optim.SGD(self.mapping.parameters(), lr=options.map_lr)
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.n_src = min(options.most_frequent, src.shape[0])
        self.n_tgt = min(options.most_frequent, tgt.shape[0])
        batch = options.batch_size
        # smoothed "is mapped source" targets: the source half first, then the target half
        self.labels = torch.cat([torch.full((batch,), 1 - options.smooth), torch.full((batch,), options.smooth)]).to(device)

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Word ids of one batch among the most frequent source and target words."""
        batch = self.options.batch_size
        src_ids = torch.randint(self.n_src, (batch,), generator=self.generator).to(self.device)
        tgt_ids = torch.randint(self.n_tgt, (batch,), generator=self.generator).to(self.device)
        return src_ids, tgt_ids

    def discriminator_step(self) -> None:
        """One SGD step of the discriminator on a fresh batch; the mapping is held fixed."""
        options = self.options
        self.discriminator.train()
        src_ids, tgt_ids = self.sample()
        with torch.no_grad():
            x = torch.cat([self.mapping(self.src[src_ids]), self.tgt[tgt_ids]])
        loss = self.loss_fn(self.discriminator(x).squeeze(1), self.labels)
        self.dis_optim.zero_grad()
        loss.backward()
        if options.dis_clip > 0:
            for p in self.discriminator.parameters():
                p.data.clamp_(-options.dis_clip, options.dis_clip)
        self.dis_optim.step()

    def mapping_step(self) -> None:
        """One SGD step of the mapping towards fooling the discriminator, then the pull back towards orthogonality."""
        # As MUSE's mapping_step: the mapping is trained against the discriminator without its dropout.
        self.discriminator.eval()
        src_ids, tgt_ids = self.sample()
        x = torch.cat([self.mapping(self.src[src_ids]), self.tgt[tgt_ids]])
        loss = self.loss_fn(self.discriminator(x).squeeze(1), 1 - self.labels)
        self.map_optim.zero_grad()
        loss.backward()
        self.map_optim.step()
        with torch.no_grad():
            self.mapping.weight.copy_(orthogonalize(self.mapping.weight, self.options.map_beta))

    def criterion(self) -> float:
        """MUSE's unsupervised model-selection score of the current mapping."""
        with torch.no_grad():
            return mean_cosine_criterion(self.mapping(self.src), self.tgt)

    def update_lr(self, improved: bool, epoch: int) -> None:
        """After an epoch: shrink the mapping's learning rate when the criterion did not improve (from the second epoch), then decay it."""
        options = self.options
        if not improved and epoch > 0:
            for group in self.map_optim.param_groups:
                group["lr"] = max(options.min_lr, group["lr"] * options.lr_shrink)
        # MUSE's update_lr decays the mapping's learning rate only; the discriminator keeps dis_lr.
        for group in self.map_optim.param_groups:
            group["lr"] = max(options.min_lr, group["lr"] * options.lr_decay)


def adversarial_mapping(src: torch.Tensor, tgt: torch.Tensor, options: AdversarialOptions | None = None) -> AdversarialResult:
    """Learn W (``src @ W.T`` lands in the target space) without any dictionary.

    Each iteration takes ``dis_steps`` discriminator steps and one mapping
    step; after each epoch the best mapping so far (by the criterion) is kept.
    """
    options = options or AdversarialOptions()
    trainer = _AdversarialTrainer(src, tgt, options)
    initial = mean_cosine_criterion(src, tgt)
    best, best_weight, history = initial, trainer.mapping.weight.detach().clone(), []
    logger.info("adversarial training: criterion at start %.4f", initial)
    iterations = max(1, options.epoch_size // options.batch_size)
    for epoch in range(options.epochs):
        for _ in progress_bar(range(iterations), desc=f"adversarial epoch {epoch + 1}/{options.epochs}", unit="it", leave=False):
            for _ in range(options.dis_steps):
                trainer.discriminator_step()
            trainer.mapping_step()
        score = trainer.criterion()
        history.append(score)
        logger.info("adversarial epoch %d: criterion %.4f (best %.4f)", epoch + 1, score, best)
        improved = score > best
        if improved:
            best, best_weight = score, trainer.mapping.weight.detach().clone()
        trainer.update_lr(improved, epoch)
    return AdversarialResult(best_weight, best, initial, history)
