"""Model registry.

Every model exposes ``blocks``: its trunk as an ordered list of modules, from the
input to the classifier head (the head last). Methods that act on "the last k
blocks" (CF-k, EU-k, Goel et al. 2022) and the conv-layer surgeries (CT, MSG)
use it, so they work on every registered architecture.

- ``cnn1d``: 1-D CNN for MNIST-1D (the embedded default).
- ``small_cnn``: 2-D CNN for 8x8 digits and 28x28 MNIST.
- ``resnet18``: torchvision's ResNet-18 with the ImageNet stem, as in Deep Unlearn.
- ``resnet18_cifar``: ResNet-18 with the CIFAR stem (3x3 conv, no max-pool).
- ``mlp``: a multilayer perceptron for any input shape.
- ``text_bag``: a bag of token embeddings, a hidden layer and a head, for token-id
  inputs (``rt_sentiment``; ids and padding as in :mod:`unlearnlib.datasets.text`).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

ModelFactory = Callable[[tuple[int, ...], int], nn.Module]
_MODELS: dict[str, ModelFactory] = {}
_CONV_DIMS: dict[str, int] = {}


def register_model(name: str, conv_dims: int) -> Callable[[ModelFactory], ModelFactory]:
    """Register a factory; ``conv_dims`` is the dimension of its convolutions (1 or 2, 0 for
    a model without any), which decides how a method that acts on kernels applies to it."""
    if conv_dims not in (0, 1, 2):
        raise ValueError(f"conv_dims must be 0, 1 or 2; got {conv_dims} for model {name!r}.")

    def deco(fn: ModelFactory) -> ModelFactory:
        _MODELS[name] = fn
        _CONV_DIMS[name] = conv_dims
        return fn

    return deco


def available_models() -> list[str]:
    return list(_MODELS)


def conv_dims(name: str) -> int:
    """The dimension of model ``name``'s convolutions: 1, 2, or 0 when it has none."""
    if name not in _CONV_DIMS:
        raise ValueError(f"Unknown model {name!r}; allowed: {', '.join(available_models())}.")
    return _CONV_DIMS[name]


def build_model(
    name: str, input_shape: tuple[int, ...], num_classes: int, seed: int | None = None
) -> nn.Module:
    """Build model ``name``; with ``seed`` the initial weights are a function of it alone.

    Initialisation happens on the CPU with a forked RNG, so the same seed gives the
    same weights on every device and leaves the global RNG untouched.
    """
    if name not in _MODELS:
        raise ValueError(f"Unknown model {name!r}; allowed: {', '.join(available_models())}.")
    if seed is None:
        return _MODELS[name](tuple(input_shape), num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _MODELS[name](tuple(input_shape), num_classes)


class Blocks(nn.Module):
    """A sequential trunk whose ``blocks`` attribute lists the stages in order."""

    def __init__(self, *blocks: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return x


def _conv1d_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True),
    )


@register_model("cnn1d", conv_dims=1)
def cnn1d(input_shape: tuple[int, ...], num_classes: int, width: int = 32) -> nn.Module:
    """1-D CNN for MNIST-1D in the style of the benchmark's reference CNN (Greydanus 2020):
    three strided conv-BN-ReLU blocks and a linear head over the flattened features.

    Without global pooling the head sees positions, so the model fits its training
    set perfectly (forget accuracy 1.0) while generalising less than that, which is
    the gap an unlearning benchmark measures.
    """
    length = input_shape[-1]
    c_in = input_shape[0] if len(input_shape) == 2 else 1
    out_len = length
    for _ in range(3):
        out_len = (out_len - 1) // 2 + 1
    return Blocks(
        _Reshape((c_in, length)),
        _conv1d_block(c_in, width, 2),
        _conv1d_block(width, width, 2),
        _conv1d_block(width, width, 2),
        nn.Sequential(nn.Flatten(), nn.Linear(width * out_len, num_classes)),
    )


def _conv2d_block(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


@register_model("small_cnn", conv_dims=2)
def small_cnn(input_shape: tuple[int, ...], num_classes: int, width: int = 32) -> nn.Module:
    """Small 2-D CNN for 8x8 digits (and 28x28 MNIST): three conv blocks and a head."""
    c, h, w = input_shape
    pool_last = min(h, w) >= 16
    return Blocks(
        _conv2d_block(c, width, pool=True),
        _conv2d_block(width, 2 * width, pool=pool_last),
        _conv2d_block(2 * width, 2 * width, pool=False),
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes)),
    )


@register_model("mlp", conv_dims=0)
def mlp(input_shape: tuple[int, ...], num_classes: int, hidden: tuple[int, ...] = (512,)) -> nn.Module:
    """Multilayer perceptron over the flattened input (784-512-10 on MNIST)."""
    d = math.prod(input_shape)
    blocks: list[nn.Module] = [nn.Flatten()]
    for h in hidden:
        blocks.append(nn.Sequential(nn.Linear(d, h), nn.ReLU(inplace=True)))
        d = h
    blocks.append(nn.Linear(d, num_classes))
    return Blocks(*blocks)


class SqrtNEmbedding(nn.Module):
    """Sum of the token embeddings of each row over the square root of its number of
    tokens, padding excluded: (B, L) int64 -> (B, dim). TensorFlow's ``"sqrtn"`` combiner
    (``tf.nn.embedding_lookup_sparse``).

    Against the plain mean, a word's gradient shrinks as 1/sqrt(n) rather than 1/n, so
    SGD at one rate trains the table and the layers after it: on 2,000 rt_sentiment
    snippets with the default recipe (seeds 0, 1) the mean stayed at the majority class
    (train accuracy 0.58) where sqrt-n fitted its data (1.00). ``nn.Embedding`` with a
    mask rather than ``nn.EmbeddingBag``, so that ``torch.func`` computes per-sample
    gradients of it (FF, SSD, IU). A row of padding only maps to 0.
    """

    def __init__(self, vocab_size: int, dim: int, pad: int, init_std: float = 0.1) -> None:
        super().__init__()
        self.pad = pad
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=pad)
        with torch.no_grad():  # small rows (torch draws N(0, 1)): SGD moves them relative to their size
            self.embedding.weight.normal_(0.0, init_std)
            self.embedding.weight[pad] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.long:
            raise ValueError(f"{type(self).__name__} reads int64 token ids; got {x.dtype} inputs.")
        mask = (x != self.pad).unsqueeze(-1).to(self.embedding.weight.dtype)
        return (self.embedding(x) * mask).sum(1) / mask.sum(1).clamp(min=1.0).sqrt()


@register_model("text_bag", conv_dims=0)
def text_bag(input_shape: tuple[int, ...], num_classes: int, dim: int = 32, hidden: int = 32) -> nn.Module:
    """Bag of embeddings for token ids (fastText-like, Joulin et al. 2017, plus one hidden
    layer): blocks = [sqrt-n bag of embeddings, Linear-ReLU, Linear head].

    The embedding table has one row per id of the text datasets' fixed vocabulary
    (``datasets.text.VOCAB_SIZE``), so rare words give it room to memorise single
    snippets: it fits its training set while generalising less well. Width 32: on
    rt_sentiment width 64 left the same gap (seeds 0, 1) at twice the cost of the
    per-sample-gradient methods (FF 81 s against 50 s).
    """
    from .datasets.text import PAD, VOCAB_SIZE

    if len(input_shape) != 1:
        raise ValueError(f"text_bag reads (tokens,) rows of token ids; got input shape {input_shape}.")
    return Blocks(
        SqrtNEmbedding(VOCAB_SIZE, dim, PAD),
        nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True)),
        nn.Linear(hidden, num_classes),
    )


class _Reshape(nn.Module):
    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class _ResNetWithBlocks(nn.Module):
    """torchvision ResNet-18 with ``blocks`` = [stem, layer1..layer4, head]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        head = nn.Sequential(net.avgpool, nn.Flatten(), net.fc)
        self.blocks = nn.ModuleList([stem, net.layer1, net.layer2, net.layer3, net.layer4, head])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return x


def _resnet18(input_shape: tuple[int, ...], num_classes: int, cifar_stem: bool) -> nn.Module:
    from torchvision.models import resnet18 as tv_resnet18

    net = tv_resnet18(weights=None, num_classes=num_classes)
    c = input_shape[0]
    if cifar_stem:
        net.conv1 = nn.Conv2d(c, 64, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    elif c != 3:
        net.conv1 = nn.Conv2d(c, 64, 7, stride=2, padding=3, bias=False)
    return _ResNetWithBlocks(net)


@register_model("resnet18", conv_dims=2)
def resnet18(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """torchvision ResNet-18, ImageNet stem even at 32 px (as Deep Unlearn used it)."""
    return _resnet18(input_shape, num_classes, cifar_stem=False)


@register_model("resnet18_cifar", conv_dims=2)
def resnet18_cifar(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """ResNet-18 with the CIFAR stem: 3x3 stride-1 first conv and no max-pool."""
    return _resnet18(input_shape, num_classes, cifar_stem=True)


def model_blocks(model: nn.Module) -> list[nn.Module]:
    """The ordered blocks of a registered model (input first, head last)."""
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise ValueError(f"{type(model).__name__} has no `blocks`; build it with unlearnlib.models.build_model.")
    return list(blocks)


def conv_layers(model: nn.Module) -> list[nn.Module]:
    """All 1-D and 2-D convolutions of ``model`` in module order."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters only (buffers such as BatchNorm statistics excluded)."""
    return {k: p.detach() for k, p in model.named_parameters()}
