"""Features that carry no information about the private data (issue 37): a ``cnn1d``
trained on a *separate* MNIST-1D draw, whose penultimate activations feed a certified head.

A certified removal guarantee covers the head it is proved for. If the features were learnt
on the private training set, the extractor itself would remember the forget set and the
guarantee would say nothing about the whole model. MNIST-1D is generated from a seed (Greydanus
2020, the ``mnist1d`` package), so a public draw is another seed of the same generator: the
same task, other samples. The book's embedded MNIST-1D uses the package's default seed (42);
:data:`PUBLIC_SEED` is another.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data import Split
from ..models import build_model
from ..training import Recipe, train

#: The public draw's generator seed (the embedded, private MNIST-1D uses the package's 42).
PUBLIC_SEED = 7
#: Its size: as many samples as the embedded set.
PUBLIC_SAMPLES = 6000


def public_mnist1d(seed: int = PUBLIC_SEED, num_samples: int = PUBLIC_SAMPLES) -> tuple[torch.Tensor, torch.Tensor]:
    """A public MNIST-1D draw: the package's generator with another seed, train and test
    rows together (the extractor needs no test set). Refuses the private draw's seed."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    if int(seed) == int(args.seed):
        raise ValueError(f"seed {seed} is the embedded (private) MNIST-1D draw's; choose another.")
    args.seed, args.num_samples = int(seed), int(num_samples)
    d = make_dataset(args)
    x = torch.as_tensor(np.concatenate([d["x"], d["x_test"]]), dtype=torch.float32)
    y = torch.as_tensor(np.concatenate([d["y"], d["y_test"]]), dtype=torch.long)
    return x, y


class Extractor(nn.Module):
    """A trained ``cnn1d`` without its linear head: inputs to flattened penultimate features."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*list(model.blocks)[:-1], nn.Flatten())  # cnn1d's stages, head dropped

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.eval()
        return self.body(x)


def public_extractor(seed: int = PUBLIC_SEED, epochs: int = 15, train_seed: int = 0,
                     num_samples: int = PUBLIC_SAMPLES) -> Extractor:
    """Train ``cnn1d`` on :func:`public_mnist1d` (SGD, cosine schedule, the mnist1d recipe's
    learning rate and batch size) and return its feature extractor."""
    x, y = public_mnist1d(seed, num_samples)
    model = build_model("cnn1d", tuple(x.shape[1:]), 10, seed=int(train_seed))
    recipe = Recipe(epochs=int(epochs), lr=0.05, batch_size=128)
    train(model, Split(x, y, torch.arange(len(y))), recipe, seed=int(train_seed), show_progress=False)
    return Extractor(model)


__all__ = ["PUBLIC_SEED", "PUBLIC_SAMPLES", "public_mnist1d", "Extractor", "public_extractor"]
