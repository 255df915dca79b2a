"""Sentiment of short reviews with Embedding + LSTM, against a bag of words.

The corpus (examples/data/reviews.tsv, 4,000 reviews, BSD-3-Clause, written by
examples/data/make_reviews.py) is built so word order matters: "not", "never"
and "hardly" flip a judgement and after "but" the second clause decides. Run
with ``python examples/text_lstm.py``; it prints the hold-out accuracy of the
recurrent model and of a logistic regression on word counts.

Tokens become integer ids (0 is padding, 1 an unknown word; see
examples/_text.py), padded to the longest review; ``Embedding(mask_zero=True)``
makes the LSTM skip the padding.
"""
import csv
import time
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from _text import Vocabulary
from skdl import LSTM, Embedding, NNClassifier

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


def main(max_iter=30):
    """Train both models; print and return their hold-out accuracies."""
    texts, labels = load_reviews()
    train_texts, test_texts, y_train, y_test = train_test_split(
        texts, labels, test_size=0.25, stratify=labels, random_state=0)
    tokens = Tokens().fit(train_texts)
    model = make_model(tokens.size, max_iter=max_iter)
    start = time.perf_counter()
    model.fit(tokens.transform(train_texts), y_train)
    seconds = time.perf_counter() - start
    lstm = model.score(tokens.transform(test_texts), y_test)
    counts = CountVectorizer().fit(train_texts)
    bag = LogisticRegression(max_iter=1000).fit(counts.transform(train_texts), y_train)
    bag = bag.score(counts.transform(test_texts), y_test)
    print(f"Embedding + LSTM: {lstm:.1%} hold-out accuracy ({seconds:.1f} s to train)")
    print(f"bag of words + logistic regression: {bag:.1%}")
    return lstm, bag


if __name__ == "__main__":
    main()
