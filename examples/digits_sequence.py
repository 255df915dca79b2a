"""scikit-learn's 8x8 digits read row by row: a sequence of 8 steps of 8 pixels.

Run with ``python examples/digits_sequence.py``: a GRU reads the rows top to
bottom, trains on a stratified 75% of the images and prints the accuracy on
the other 25%. Flat rows of 64 pixels become sequences through
``input_shape=(8, 8)``.
"""
import time

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skdl import GRU, NNClassifier


def make_model(random_state=0, max_iter=60):
    """A GRU of 64 units over the 8 rows; its last state feeds the softmax."""
    return NNClassifier([GRU(64)], input_shape=(8, 8), learning_rate=0.005,
                        batch_size=32, max_iter=max_iter, random_state=random_state)


def main(max_iter=60):
    """Train, print and return the hold-out accuracy."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16, y, test_size=0.25, stratify=y, random_state=0)
    model = make_model(max_iter=max_iter)
    start = time.perf_counter()
    model.fit(X_train, y_train)
    accuracy = model.score(X_test, y_test)
    print(f"digits as sequences (GRU): {accuracy:.2%} hold-out "
          f"accuracy, {model.n_iter_} epochs in {time.perf_counter() - start:.1f} s")
    return accuracy


if __name__ == "__main__":
    main()
