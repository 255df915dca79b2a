"""Sentiment of short reviews with Embedding + LSTM and with a Transformer
encoder, against a bag of words.

The corpus (examples/data/reviews.tsv, 4,000 reviews, BSD-3-Clause, written by
examples/data/make_reviews.py) is built so word order matters: "not", "never"
and "hardly" flip a judgement and after "but" the second clause decides. Run
with ``python examples/text_lstm.py``; it prints the hold-out accuracy and
training time of the recurrent model, of a small Transformer encoder
(positions added to the word vectors, one self-attention block, the mean over
the words) and of a logistic regression on word counts.

Tokens become integer ids (0 is padding, 1 an unknown word; see
examples/_text.py), padded to the longest review; ``Embedding(mask_zero=True)``
makes the LSTM skip the padding, the attention ignore it as a key and the
mean leave it out.
"""
import csv
import time
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from _text import Vocabulary
from skdl import (
    LSTM,
    Embedding,
    GlobalAvgPool1D,
    NNClassifier,
    PositionalEmbedding,
    TransformerEncoderBlock,
)

DATA = Path(__file__).with_name("data") / "reviews.tsv"


def load_reviews():
    """(texts, labels) of the bundled corpus."""
    with open(DATA, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [r["text"] for r in rows], np.array([int(r["label"]) for r in rows])


class Tokens(Vocabulary):
    """Word ids from a vocabulary fitted on training texts; 0 pads, 1 is unknown."""

    def fit(self, texts):
        super().fit([t.split() for t in texts])
        self.length = max(len(t.split()) for t in texts)
        return self

    def transform(self, texts):
        """(len(texts), length) word ids, padded at the end."""
        return self.pad([t.split() for t in texts], self.length)


def make_model(vocabulary_size, random_state=0, max_iter=30):
    """Embedding + LSTM; ``vocabulary_size`` counts padding and unknown."""
    return NNClassifier([Embedding(vocabulary_size, 16, mask_zero=True), LSTM(32)],
                        learning_rate=0.01, batch_size=64, max_iter=max_iter,
                        random_state=random_state)


def make_transformer(vocabulary_size, random_state=0, max_iter=30):
    """Embedding + learned positions + one encoder block (2 heads of 16,
    feed-forward 64) + the mean over the words."""
    return NNClassifier([Embedding(vocabulary_size, 32, mask_zero=True),
                         PositionalEmbedding(),
                         TransformerEncoderBlock(num_heads=2, key_dim=16, ff_units=64),
                         GlobalAvgPool1D()],
                        learning_rate=0.003, batch_size=64, max_iter=max_iter,
                        random_state=random_state)


def main(max_iter=30):
    """Train the three models; print and return their hold-out accuracies
    (LSTM, Transformer, bag of words)."""
    texts, labels = load_reviews()
    train_texts, test_texts, y_train, y_test = train_test_split(
        texts, labels, test_size=0.25, stratify=labels, random_state=0)
    tokens = Tokens().fit(train_texts)
    X_train, X_test = tokens.transform(train_texts), tokens.transform(test_texts)
    scores, seconds = [], []
    for make in (make_model, make_transformer):
        model = make(tokens.size, max_iter=max_iter)
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds.append(time.perf_counter() - start)
        scores.append(model.score(X_test, y_test))
    lstm, transformer = scores
    counts = CountVectorizer().fit(train_texts)
    bag = LogisticRegression(max_iter=1000).fit(counts.transform(train_texts), y_train)
    bag = bag.score(counts.transform(test_texts), y_test)
    print(f"Embedding + LSTM: {lstm:.1%} hold-out accuracy ({seconds[0]:.1f} s to train)")
    print(f"Embedding + Transformer encoder: {transformer:.1%} hold-out accuracy "
          f"({seconds[1]:.1f} s to train)")
    print(f"bag of words + logistic regression: {bag:.1%}")
    return lstm, transformer, bag


if __name__ == "__main__":
    main()
