"""Sentiment of short reviews with Embedding + LSTM, against a bag of words.

The corpus (examples/data/reviews.tsv, 4,000 reviews, BSD-3-Clause, written by
examples/data/make_reviews.py) is built so word order matters: "not", "never"
and "hardly" flip a judgement and after "but" the second clause decides. Run
with ``python examples/text_lstm.py``; it prints the hold-out accuracy of the
recurrent model and of a logistic regression on word counts.

Tokens become integer ids (0 is padding, 1 an unknown word), padded to the
longest review; ``Embedding(mask_zero=True)`` makes the LSTM skip the padding.
"""
import csv
import time
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from skdl import LSTM, Embedding, NNClassifier

DATA = Path(__file__).with_name("data") / "reviews.tsv"


def load_reviews():
    """(texts, labels) of the bundled corpus."""
    with open(DATA, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [r["text"] for r in rows], np.array([int(r["label"]) for r in rows])


class Tokens:
    """Word ids from a vocabulary fitted on training texts; 0 pads, 1 is unknown."""

    def fit(self, texts):
        words = sorted({w for t in texts for w in t.split()})
        self.ids = {w: i + 2 for i, w in enumerate(words)}
        self.length = max(len(t.split()) for t in texts)
        return self

    def transform(self, texts):
        X = np.zeros((len(texts), self.length))
        for row, text in enumerate(texts):
            ids = [self.ids.get(w, 1) for w in text.split()][:self.length]
            X[row, :len(ids)] = ids
        return X


def make_model(vocabulary_size, random_state=0):
    return NNClassifier([Embedding(vocabulary_size, 16, mask_zero=True), LSTM(32)],
                        learning_rate=0.01, batch_size=64, max_iter=30,
                        random_state=random_state)


def main():
    texts, labels = load_reviews()
    train_texts, test_texts, y_train, y_test = train_test_split(
        texts, labels, test_size=0.25, stratify=labels, random_state=0)
    tokens = Tokens().fit(train_texts)
    model = make_model(len(tokens.ids) + 2)
    start = time.perf_counter()
    model.fit(tokens.transform(train_texts), y_train)
    seconds = time.perf_counter() - start
    lstm = model.score(tokens.transform(test_texts), y_test)
    counts = CountVectorizer().fit(train_texts)
    bag = LogisticRegression(max_iter=1000).fit(counts.transform(train_texts), y_train)
    print(f"Embedding + LSTM: {lstm:.1%} hold-out accuracy ({seconds:.1f} s to train)")
    print(f"bag of words + logistic regression: "
          f"{bag.score(counts.transform(test_texts), y_test):.1%}")


if __name__ == "__main__":
    main()
