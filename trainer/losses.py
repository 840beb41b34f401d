"""The paper's loss (Sec. III-D): Dice loss + focal loss with gamma = 2 (Eqs. 8-10)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Eq. 8: ``1 - (2·Σ p·y + s) / (Σ p + Σ y + s)`` per image, averaged over the batch.

    The printed Eq. 8 lost its layout in extraction; this is the standard soft Dice with the smoothing term of
    one that its numerator and denominator show.
    """
    probability = torch.sigmoid(logits.float()).flatten(1)
    target = target.float().flatten(1)
    intersection = (probability * target).sum(dim=1)
    return (1.0 - (2.0 * intersection + smooth) / (probability.sum(dim=1) + target.sum(dim=1) + smooth)).mean()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Eq. 9: ``-y (1-p)^γ log p - (1-y) p^γ log(1-p)``, averaged over pixels.

    Eq. 9 as extracted puts ``γ`` on ``P_seg`` in the second term, which is the usual binary focal loss; it is
    computed from logits (``log σ(x)``) for numerical stability in bf16/fp16.
    """
    logits, target = logits.float(), target.float()
    probability = torch.sigmoid(logits)
    positive = -target * (1.0 - probability).pow(gamma) * F.logsigmoid(logits)
    negative = -(1.0 - target) * probability.pow(gamma) * F.logsigmoid(-logits)
    return (positive + negative).mean()


class DiceFocalLoss(nn.Module):
    """Eq. 10: ``Loss_seg = Dice loss + Focal loss``."""

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return dice_loss(logits, target) + focal_loss(logits, target, self.gamma)
