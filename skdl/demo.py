"""Demo: a dense network on scikit-learn's digits, inside a Pipeline.

Run with ``python -m skdl.demo``. Trains on 75% of the 8x8 digit images
(stratified split), prints the hold-out accuracy, the training time and, for
comparison, scikit-learn's MLPClassifier on the same split.
"""
import argparse
import time
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from . import Dense, Dropout, NNClassifier, show_config


def make_model(random_state=0):
    """The demo's pipeline: standardize, then a 64-256-128-10 network."""
    return make_pipeline(
        StandardScaler(),
        NNClassifier(
            layers=[Dense(256, activation="relu"), Dropout(0.2),
                    Dense(128, activation="relu")],
            batch_size=64, max_iter=100, random_state=random_state,
        ),
    )


def run(random_state=0, compare=True, file=None):
    """Fit the demo pipeline and return ``(accuracy, seconds)``."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=random_state
    )
    model = make_model(random_state)
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    accuracy = model.score(X_test, y_test)
    net = model[-1]
    print(f"skdl NNClassifier: {accuracy:.2%} hold-out accuracy on digits "
          f"({len(y_test)} images), trained in {seconds:.2f} s, "
          f"{net.n_iter_} epochs", file=file)
    if compare:
        mlp = make_pipeline(StandardScaler(), MLPClassifier((256, 128), batch_size=64,
                                                            max_iter=100,
                                                            random_state=random_state))
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit(X_train, y_train)
        print(f"sklearn MLPClassifier: {mlp.score(X_test, y_test):.2%}, trained in "
              f"{time.perf_counter() - start:.2f} s", file=file)
    return accuracy, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the MLPClassifier comparison")
    args = parser.parse_args(argv)
    show_config()
    print()
    run(args.random_state, compare=not args.no_compare)


if __name__ == "__main__":
    main()
