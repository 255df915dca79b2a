"""Question classification with Kim's (2014) sentence CNN, against a bag of
words and an LSTM.

The corpus (examples/data/questions.tsv, 3,000 questions in six TREC-like
classes: abbreviation, description, entity, person, location, number;
BSD-3-Clause, written by examples/data/make_questions.py) is built so that no
word gives the class away: most questions name a place, a person and a thing,
and the class is the kind of noun right after "what", "which" or "name the".
Run with ``python examples/text_cnn.py``; it prints the hold-out accuracy and
training time of

- the CNN: word embeddings, convolutions of widths 3, 4 and 5 along the words
  side by side (``Pathways``), each followed by a maximum over the positions
  (``GlobalMaxPool1D``), the three concatenated, dropout, softmax;
- a logistic regression on word counts (a bag of words), and on counts of
  1- to 3-grams, which see the phrases the convolutions learn to detect;
- Embedding + LSTM, as in examples/text_lstm.py.

Tokens become integer ids (0 is padding, 1 an unknown word; see
examples/_text.py), padded to the longest question. After ``Embedding`` a
``Conv1D`` reads its input as (steps, features) and convolves along the
words (its ``data_format=None`` default follows the layer before); the CNN
reads the padding as a word, as Kim's does, while the LSTM skips it
(``mask_zero=True``).
"""
import csv
import time
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from _text import Vocabulary
from skdl import (
    LSTM,
    Conv1D,
    Dropout,
    Embedding,
    GlobalMaxPool1D,
    NNClassifier,
    Pathways,
)

DATA = Path(__file__).with_name("data") / "questions.tsv"
WIDTHS = (3, 4, 5)  # Kim's window widths, in words


def load_questions():
    """(texts, labels) of the bundled corpus."""
    with open(DATA, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [r["text"] for r in rows], np.array([r["label"] for r in rows])


class Tokens(Vocabulary):
    """Word ids from a vocabulary fitted on training texts; 0 pads, 1 is unknown."""

    def fit(self, texts):
        super().fit([t.split() for t in texts])
        self.length = max(len(t.split()) for t in texts)
        return self

    def transform(self, texts):
        """(len(texts), length) word ids, padded at the end."""
        return self.pad([t.split() for t in texts], self.length)


def make_cnn(vocabulary_size, filters=32, max_iter=10, random_state=0):
    """Kim's CNN: ``filters`` feature maps per window width, each reduced to
    its maximum over the question; ``vocabulary_size`` counts padding and
    unknown."""
    branches = [[Conv1D(filters, width, activation="relu", name=f"conv{width}"),
                 GlobalMaxPool1D()] for width in WIDTHS]
    return NNClassifier([Embedding(vocabulary_size, 32), Pathways(branches),
                         Dropout(0.5)],
                        learning_rate=0.003, batch_size=50, max_iter=max_iter,
                        random_state=random_state)


def make_lstm(vocabulary_size, max_iter=10, random_state=0):
    """Embedding + LSTM over the words, the padding skipped."""
    return NNClassifier([Embedding(vocabulary_size, 32, mask_zero=True), LSTM(32)],
                        learning_rate=0.01, batch_size=50, max_iter=max_iter,
                        random_state=random_state)


def main(max_iter=10, filters=32, n_questions=None):
    """Train the four models; print and return their hold-out accuracies by
    name (``max_iter`` epochs for the two networks; the first
    ``n_questions`` of the corpus, or all of it)."""
    texts, labels = load_questions()
    texts, labels = texts[:n_questions], labels[:n_questions]
    train_texts, test_texts, y_train, y_test = train_test_split(
        texts, labels, test_size=0.25, stratify=labels, random_state=0)
    tokens = Tokens().fit(train_texts)
    X_train, X_test = tokens.transform(train_texts), tokens.transform(test_texts)
    models = {
        "CNN (widths 3, 4, 5)": (make_cnn(tokens.size, filters, max_iter), X_train, X_test),
        "Embedding + LSTM": (make_lstm(tokens.size, max_iter), X_train, X_test),
    }
    for name, ngrams in [("bag of words", (1, 1)), ("bag of 1-3-grams", (1, 3))]:
        counts = CountVectorizer(ngram_range=ngrams, token_pattern=r"\S+").fit(train_texts)
        models[f"{name} + logistic regression"] = (
            LogisticRegression(max_iter=1000), counts.transform(train_texts),
            counts.transform(test_texts))
    scores = {}
    for name, (model, train, test) in models.items():
        start = time.perf_counter()
        if isinstance(model, LogisticRegression):
            # lbfgs on a small sparse problem: BLAS threads only wait on each
            # other (20 times slower here on two busy cores than one thread).
            with threadpool_limits(1, user_api="blas"):
                model.fit(train, y_train)
        else:
            model.fit(train, y_train)
        seconds = time.perf_counter() - start
        scores[name] = model.score(test, y_test)
        print(f"{name}: {scores[name]:.1%} hold-out accuracy ({seconds:.1f} s to train)")
    return scores


if __name__ == "__main__":
    main()
